"""Cold start of the Lambda handlers: import and first invocation, each in a fresh interpreter.

    .venv/bin/python bench/handler_cold_start.py [--runs 15] [--handler repair] [--json]
                                                 [--root DIR] [--skip-sandbox]

Every figure is a median over ``--runs`` fresh interpreters (``--root`` measures another
checkout of the project with the same method, e.g. the code before a change):

* cold import of each ``lambdas.<handler>`` module (module init, before the first event),
  wall clock and CPU time of the interpreter (the CPU time does not count waiting for a core
  that other processes hold, so the two together show how loaded the machine was);
* the first invocation with a no-op event (a failed CloudTrail call: settings and
  federation.yaml are read, nothing else), untraced and traced (a Lambda environment with
  active tracing: ``LAMBDA_TASK_ROOT`` and an X-Ray trace header set);
* what a full reconcile loads on its first event (the engine, boto3 and the kubernetes client,
  the AWS service models of every client it creates);
* the first and a warm invocation of ``repair`` with a scheduled event against the sandbox,
  with a fresh container's connections (EKS token, describe_cluster, the on-prem secret, both
  Kubernetes clients, the AWS clients and their models) and the ids the stack sets: the code
  is loaded already, as in a container restored from a SnapStart snapshot;
* where the cold import of ``lambdas.repair`` goes: ``python -X importtime``, median self time
  per module.
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
HANDLERS = ("on_tunnel_state", "on_route_change", "on_cluster_event", "repair", "watch")
HEAVY = ("pydantic", "boto3", "botocore.client", "kubernetes", "aws_xray_sdk", "moto")
NOOP_EVENT = "tests/events/cloudtrail_ec2_DisableVgwRoutePropagation_denied.json"
SCHEDULED_EVENT = "tests/events/scheduled_event.json"
# What a full reconcile imports on its first event; each name exists before and after the
# change that made the kubernetes client lazy (importing one that is loaded costs nothing).
ENGINE_MODULES = ("fedkeeper.lambda_runtime", "fedkeeper.service", "fedkeeper.adapters.kube")
AWS_CLIENTS = ("ec2", "eks", "cloudtrail", "secretsmanager", "sts")


def _env(root: Path, *, traced: bool = False) -> dict[str, str]:
    """The Lambda environment the automation stack sets (less the AWS ids), for ``root``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FEDKEEPER_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN", "AWS_XRAY"))
    }
    env.update(
        {
            "PYTHONPATH": str(root),
            "FEDKEEPER_CONFIG_PATH": str(root / "federation.example.yaml"),
            "POWERTOOLS_SERVICE_NAME": "fedkeeper",
            "POWERTOOLS_METRICS_NAMESPACE": "Fedkeeper",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    if traced:
        # Lambda with active tracing: the task root, a sampled trace header, the daemon's
        # address (UDP: segments sent where nothing listens are simply lost).
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(root),
                "AWS_LAMBDA_FUNCTION_NAME": "bench",
                "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;"
                "Parent=53995c3f42cd8ad8;Sampled=1",
                "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2999",
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
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

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def _loaded() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]


def _child(mode: str, handler: str) -> dict[str, Any]:
    """One measurement in this (fresh) process; milliseconds."""
    root = Path(os.environ["PYTHONPATH"])
    if mode == "import":
        _, wall, cpu = _timed(lambda: __import__(f"lambdas.{handler}"))
        return {"ms": wall, "cpu_ms": cpu, "loaded": _loaded()}
    module: Any = __import__(f"lambdas.{handler}", fromlist=["handler"])
    if mode in ("noop", "noop-traced"):
        event = json.loads((root / NOOP_EVENT).read_text())
        response, wall, cpu = _timed(lambda: module.handler(event, _Context(f"bench-{handler}")))
        assert response["changes"] == [], response
        return {"ms": wall, "cpu_ms": cpu, "loaded": _loaded()}
    if mode == "engine":

        def load() -> None:
            import importlib

            for name in ENGINE_MODULES:
                importlib.import_module(name)
            import boto3

            session = boto3.Session(region_name="eu-west-1")
            for service in AWS_CLIENTS:
                session.client(service)

        _, wall, cpu = _timed(load)
        return {"ms": wall, "cpu_ms": cpu}
    if mode == "sandbox":
        return _sandbox_run(root)
    raise ValueError(mode)


def _sandbox_run(root: Path) -> dict[str, Any]:
    from fedkeeper.config import load_config
    from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
    from fedkeeper.sandbox import Sandbox
    from fedkeeper.service import Connections, Targets

    config = load_config(root / "federation.example.yaml")
    event = json.loads((root / SCHEDULED_EVENT).read_text())
    repair: Any = __import__("lambdas.repair", fromlist=["handler"])
    with Sandbox.start(config) as sb:
        b = sb.baseline
        assert b is not None
        # A fresh container's connections as the reconciler, with the ids the stack sets.
        targets = Targets(
            vpc_id=b.vpc_id,
            vgw_id=b.vgw_id,
            vpn_connection_id=b.vpn_connection_id,
            cluster_name=config.sole_eks().cluster_name,
        )
        conns = Connections(
            config, sb.reconciler_session(), targets=targets, clock=sb.clock.monotonic
        )
        rt = Runtime(Settings.from_env(), config, connections=conns)
        timings, responses = [], []
        with use_runtime(rt):
            for _ in range(2):
                out, wall, _cpu = _timed(lambda: repair.handler(event, _Context("bench-repair")))
                timings.append(wall)
                responses.append(out)
        assert responses[-1]["converged"], responses[-1]
    return {"first_ms": timings[0], "warm_ms": timings[1], "calls": responses[-1]["api_calls"]}


def _run(root: Path, mode: str, handler: str, *, traced: bool = False) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--handler", handler],
        cwd=root,
        env=_env(root, traced=traced),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {handler} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of ``values`` (the noise a figure carries)."""
    xs = sorted(values)
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"median": statistics.median(xs), "p25": q[0], "p75": q[2], "min": xs[0], "max": xs[-1]}


def _series(root: Path, mode: str, handler: str, runs: int, **kw: Any) -> dict[str, Any]:
    results = [_run(root, mode, handler, **kw) for _ in range(runs)]
    out: dict[str, Any] = {"n": runs, "wall": spread([r["ms"] for r in results])}
    if "cpu_ms" in results[0]:
        out["cpu"] = spread([r["cpu_ms"] for r in results])
    if "loaded" in results[0]:
        out["loaded"] = sorted({m for r in results for m in r["loaded"]})
    return out


def importtime(root: Path, module: str, runs: int, top: int = 12) -> list[dict[str, Any]]:
    """``python -X importtime -c "import module"``: the modules with most median self time."""

    def lines(statement: str) -> list[tuple[str, int, int]]:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            cwd=root,
            env=_env(root),
            capture_output=True,
            text=True,
            check=True,
        )
        out = []
        for line in proc.stderr.splitlines():
            if line.startswith("import time:") and "[us]" not in line:
                self_us, cum_us, name = line.removeprefix("import time:").split("|")
                out.append((name.strip(), int(self_us), int(cum_us)))
        return out

    startup = {name for name, _, _ in lines("pass")}  # what the interpreter loads anyway
    selfs: dict[str, list[int]] = {}
    cumulative: dict[str, list[int]] = {}
    for _ in range(runs):
        for name, self_us, cum_us in lines(f"import {module}"):
            if name not in startup:
                selfs.setdefault(name, []).append(self_us)
                cumulative.setdefault(name, []).append(cum_us)
    rows = [
        {
            "module": name,
            "self_ms": statistics.median(v) / 1000,
            "cumulative_ms": statistics.median(cumulative[name]) / 1000,
        }
        for name, v in selfs.items()
        if len(v) == runs
    ]
    rows.sort(key=lambda r: r["self_ms"], reverse=True)
    return rows[:top]


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def measure(
    root: Path = ROOT,
    runs: int = 15,
    handlers: tuple[str, ...] = HANDLERS,
    *,
    sandbox: bool = True,
) -> dict[str, Any]:
    """Every cold-start figure for the checkout at ``root``, as data."""
    out: dict[str, Any] = {"runs": runs, "load_before": _loadavg()}
    out["import"] = {h: _series(root, "import", h, runs) for h in handlers}
    few = max(3, runs // 2)
    out["noop"] = _series(root, "noop", "on_route_change", few)
    out["noop_traced"] = _series(root, "noop-traced", "on_route_change", few, traced=True)
    out["engine"] = _series(root, "engine", "repair", few)
    if sandbox:
        results = [_run(root, "sandbox", "repair") for _ in range(min(few, 5))]
        out["first_full"] = {
            "n": len(results),
            "first": spread([r["first_ms"] for r in results]),
            "warm": spread([r["warm_ms"] for r in results]),
            "calls": results[-1]["calls"],
        }
    out["importtime"] = importtime(root, "lambdas.repair", few)
    out["load_after"] = _loadavg()
    return out


def _fmt(s: dict[str, float]) -> str:
    return f"{s['median']:6.1f} ms (IQR {s['p25']:.0f}-{s['p75']:.0f})"


def render(m: dict[str, Any]) -> str:
    """The figures as the plain-text block `make bench` prints."""
    lines = [
        f"medians of {m['runs']} fresh interpreters (others: fewer, as noted); "
        f"load average {m['load_before']} before, {m['load_after']} after",
        "cold import (module init)        wall                       CPU      heavy modules loaded",
    ]
    for h, s in m["import"].items():
        lines.append(
            f"  lambdas.{h:<18} {_fmt(s['wall'])}  {s['cpu']['median']:6.1f} ms  "
            f"{', '.join(s['loaded']) or '-'}"
        )
    for key, label in (("noop", "untraced"), ("noop_traced", "traced")):
        s = m[key]
        lines.append(
            f"first invocation, no-op event, {label} (n={s['n']}): {_fmt(s['wall'])}, "
            f"CPU {s['cpu']['median']:.1f} ms; loaded: {', '.join(s['loaded']) or '-'}"
        )
    e = m["engine"]
    lines.append(
        f"a full reconcile's first-event loads (engine, boto3, kubernetes, {len(AWS_CLIENTS)} "
        f"AWS clients' models) (n={e['n']}): {_fmt(e['wall'])}, CPU {e['cpu']['median']:.1f} ms"
    )
    if "first_full" in m:
        f = m["first_full"]
        lines.append(
            f"first full scheduled invocation, code loaded, fresh connections (n={f['n']}): "
            f"{_fmt(f['first'])}; warm {_fmt(f['warm'])}; api calls {f['calls']}"
        )
        lines.append(
            "  fully cold (no snapshot): first-event loads + that first invocation = "
            f"{e['wall']['median'] + f['first']['median']:.0f} ms"
        )
    lines.append("where the cold import of lambdas.repair goes (python -X importtime, medians):")
    lines += [
        f"  {r['self_ms']:6.1f} ms self  {r['cumulative_ms']:6.1f} ms cumulative  {r['module']}"
        for r in m["importtime"]
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=15, help="fresh interpreters per figure")
    p.add_argument("--handler", default=None, help="one handler (default: all five)")
    p.add_argument("--root", type=Path, default=ROOT, help="checkout to measure")
    p.add_argument("--skip-sandbox", action="store_true", help="skip the full-reconcile run")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.handler or "repair")))
        return 0
    handlers = (args.handler,) if args.handler else HANDLERS
    m = measure(args.root.resolve(), args.runs, handlers, sandbox=not args.skip_sandbox)
    print(json.dumps(m, indent=1) if args.json else render(m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
