#!/usr/bin/env python3
"""fedkeeper's CDK app: ``cdk synth`` / ``cdk deploy --all`` (or ``python app.py``).

Reads the federation config from context ``config`` (``cdk synth -c config=path``), by
default ``federation.yaml`` or else ``federation.example.yaml``, and synthesizes the network,
cluster and automation stacks. Needs no AWS credentials, no network and no Docker (the
Lambda dependencies come from the ``.build/lambda-deps`` cache once it is filled).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

from fedkeeper.config import load_config
from fedkeeper.errors import ConfigError
from stacks import add_compliance_checks, build_stacks, default_config_file, feature_flags


def main() -> int:
    # The CDK CLI names the output directory; run directly, write where the CLI would.
    outdir = None if os.environ.get("CDK_OUTDIR") else "cdk.out"
    app = cdk.App(context=feature_flags(), outdir=outdir)
    config_file = Path(app.node.try_get_context("config") or default_config_file()).resolve()
    try:
        config = load_config(config_file)
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
