#!/usr/bin/env python3
"""fedkeeper's CDK app: ``cdk synth`` / ``cdk deploy --all`` (or ``python app.py``).

Reads the federation config from context ``config`` (``cdk synth -c config=path``; ``python
app.py -c config=PATH`` works too) or else ``./federation.yaml``, never the example:
deploying the example's values to a real account by accident is worse than refusing
(``fedkeeper init`` writes a federation.yaml to edit). Synthesizes the network, cluster,
calico and automation stacks. Needs no AWS credentials, no network and no Docker (the
Lambda dependencies come from the ``.build/lambda-deps`` cache once it is filled).
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import aws_cdk as cdk

from fedkeeper.config import load_config
from fedkeeper.errors import ConfigError
from stacks import add_compliance_checks, build_stacks, feature_flags

NO_CONFIG = (
    "no config: pass -c config=PATH (cdk synth -c config=federation.yaml) or put a "
    "federation.yaml in the working directory; `fedkeeper init` writes one to edit"
)


def config_source(context_value: object, argv: list[str]) -> Path | None:
    """``-c config=…`` (from the CDK CLI, or on ``python app.py``'s own command line) or
    ./federation.yaml; None when neither is given (never the example)."""
    for flag, value in itertools.pairwise(argv):
        if flag in ("-c", "--context") and value.startswith("config="):
            return Path(value.removeprefix("config=")).resolve()
    if isinstance(context_value, str) and context_value:
        return Path(context_value).resolve()
    own = Path("federation.yaml")
    return own.resolve() if own.is_file() else None


def main() -> int:
    # The CDK CLI names the output directory; run directly, write where the CLI would.
    outdir = None if os.environ.get("CDK_OUTDIR") else "cdk.out"
    app = cdk.App(context=feature_flags(), outdir=outdir)
    config_file = config_source(app.node.try_get_context("config"), sys.argv[1:])
    if config_file is None:
        print(NO_CONFIG, file=sys.stderr)
        return 2
    try:
        config = load_config(config_file)
        config.require_two_clusters()  # the stacks for N clusters are not wired yet
    except ConfigError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    build_stacks(app, config, config_file)
    add_compliance_checks(app)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
