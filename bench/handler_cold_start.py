"""Cold start of the Lambda handlers: import time and first invocation, each in a fresh process.

    .venv/bin/python bench/handler_cold_start.py [--runs 7] [--handler on_route_change]
                                                 [--importtime] [--skip-sandbox]

Measures, as medians over ``--runs`` fresh interpreters (run from the repository root):

* cold import of each handler module (``import lambdas.<name>``: Powertools, pydantic, the
  pure layers — boto3 and the kubernetes client are not imported yet);
* the lazy import of the engine on the first event that needs a reconcile
  (``fedkeeper.service``: boto3, botocore, the kubernetes client);
* the first invocation with a no-op event (a failed CloudTrail call: settings and
  federation.yaml are read, nothing else), and whether it pulled in boto3/kubernetes;
* the first and second (warm) invocation of ``repair`` with a scheduled event against the
  sandbox, with fresh connections (EKS token, describe_cluster, the on-prem secret, both
  Kubernetes clients) — the sandbox itself is started before the clock runs.

``--importtime`` also breaks the cold import down by stage (pydantic, Powertools, the
runtime module, the Tracer's X-Ray recorder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("on_tunnel_state", "on_route_change", "on_cluster_event", "repair")
NOOP_EVENT = ROOT / "tests" / "events" / "cloudtrail_ec2_DisableVgwRoutePropagation_denied.json"
SCHEDULED_EVENT = ROOT / "tests" / "events" / "scheduled_event.json"
EXAMPLE = ROOT / "federation.example.yaml"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEEPER_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "FEDKEEPER_CONFIG_PATH": str(EXAMPLE),
            "POWERTOOLS_SERVICE_NAME": "fedkeeper",
            "POWERTOOLS_METRICS_NAMESPACE": "Fedkeeper",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    return env


@dataclass
class _Context:
    """The Lambda context fields Powertools reads (no sandbox import: it is heavy)."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    aws_request_id: str = "bench"


def _child(mode: str, handler: str) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns numbers in milliseconds."""
    if mode == "import":
        t = time.perf_counter()
        __import__(f"lambdas.{handler}")
        return {"ms": (time.perf_counter() - t) * 1000}
    if mode == "breakdown":
        return _breakdown(handler)
    if mode == "engine":
        import lambdas  # noqa: F401  # already paid for at init

        t = time.perf_counter()
        import fedkeeper.service  # noqa: F401

        return {"ms": (time.perf_counter() - t) * 1000}
    module: Any = __import__(f"lambdas.{handler}", fromlist=["handler"])
    if mode == "noop":
        event = json.loads(NOOP_EVENT.read_text())
        t = time.perf_counter()
        response = module.handler(event, _Context(f"fedkeeper-{handler}"))
        ms = (time.perf_counter() - t) * 1000
        assert response["changes"] == [], response
        heavy = ("botocore", "boto3", "kubernetes", "moto")
        return {"ms": ms, "loaded": [m for m in heavy if m in sys.modules]}
    if mode == "sandbox":
        from fedkeeper.config import load_config
        from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
        from fedkeeper.sandbox import Sandbox
        from fedkeeper.service import Connections

        config = load_config(EXAMPLE)
        event = json.loads(SCHEDULED_EVENT.read_text())
        repair: Any = __import__("lambdas.repair", fromlist=["handler"])
        with Sandbox.start(config) as sb:
            # A fresh container's connections (as the reconciler role): only imports cached.
            conns = Connections(config, sb.reconciler_session(), clock=sb.clock.monotonic)
            rt = Runtime(Settings.from_env(), config, connections=conns)
            timings = []
            with use_runtime(rt):
                for _ in range(2):
                    t = time.perf_counter()
                    response = repair.handler(event, _Context("fedkeeper-repair"))
                    timings.append((time.perf_counter() - t) * 1000)
            assert response["converged"], response
        return {"first_ms": timings[0], "warm_ms": timings[1], "calls": response["api_calls"]}
    raise ValueError(mode)


def _run(mode: str, handler: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--handler", handler],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {handler} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _median(mode: str, handler: str, runs: int, key: str = "ms") -> tuple[float, dict[str, Any]]:
    results = [_run(mode, handler) for _ in range(runs)]
    return statistics.median(r[key] for r in results), results[-1]


def _breakdown(handler: str) -> dict[str, Any]:
    """Where a cold import goes, stage by stage, in this (fresh) process."""
    stages: dict[str, float] = {}

    def stage(name: str, start: float) -> float:
        now = time.perf_counter()
        stages[name] = (now - start) * 1000
        return now

    t = time.perf_counter()
    import pydantic  # noqa: F401

    t = stage("pydantic", t)
    from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: F401

    t = stage("Powertools Logger/Metrics/Tracer classes", t)
    import fedkeeper.lambda_runtime  # noqa: F401

    t = stage("fedkeeper.lambda_runtime (config, events, parser models)", t)
    Tracer(service="bench")
    t = stage("Tracer() (X-Ray SDK recorder, its botocore clients, patching)", t)
    __import__(f"lambdas.{handler}")
    stage(f"the rest of lambdas.{handler}", t)
    return {"stages": stages}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=7, help="fresh processes per figure (median)")
    p.add_argument("--handler", default=None, help="one handler (default: all four)")
    p.add_argument("--importtime", action="store_true", help="break the cold import down by stage")
    p.add_argument("--skip-sandbox", action="store_true", help="skip the full-reconcile run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.handler or "repair")))
        return 0

    handlers = [args.handler] if args.handler else list(HANDLERS)
    print(f"Python {sys.version.split()[0]} · medians of {args.runs} fresh processes\n")
    print("cold import (module init, before the first event)")
    for name in handlers:
        ms, _ = _median("import", name, args.runs)
        print(f"  lambdas.{name:<18} {ms:7.1f} ms")
    ms, _ = _median("engine", "repair", args.runs)
    print(f"  + fedkeeper.service (boto3, kubernetes) on the first reconcile: {ms:7.1f} ms")

    name = args.handler or "on_route_change"
    ms, last = _median("noop", name, args.runs)
    print(
        f"\nfirst invocation, no-op event ({name}): {ms:.1f} ms "
        f"(heavy modules loaded by then: {', '.join(last['loaded']) or 'none'})"
    )
    if not args.skip_sandbox:
        runs = max(1, min(args.runs, 5))
        results = [_run("sandbox", "repair") for _ in range(runs)]
        first = statistics.median(r["first_ms"] for r in results)
        warm = statistics.median(r["warm_ms"] for r in results)
        calls = results[-1]["calls"]
        print(
            f"first invocation, scheduled full reconcile on the sandbox (repair, fresh "
            f"connections; median of {runs}): {first:.1f} ms; warm: {warm:.1f} ms "
            f"(api calls {calls})"
        )
    if args.importtime:
        results = [_run("breakdown", name)["stages"] for _ in range(args.runs)]
        print(f"\nwhere the cold import of lambdas.{name} goes (medians):")
        for stage in results[0]:
            print(f"  {statistics.median(r[stage] for r in results):7.1f} ms  {stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
