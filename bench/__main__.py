"""`make bench`: every benchmark, printed, and docs/BENCHMARKS.md written from the figures.

1. API calls of a converged full reconcile in worlds from 2 to 200 route tables, 1 to 5 VPC
   CIDRs and 0 to 1,000 foreign pools, with each read it makes; the calls of each scoped
   event reconcile; event → converged time per demo scenario (bench/reconcile_calls.py);
2. handler cold import and first invocation (bench/handler_cold_start.py);
3. `python app.py` synth time and the Lambda code asset's size (bench/synth.py);
4. time to repair per demo scenario, before the watch and with it (bench/time_to_repair.py);
5. full meshes of 2 to 32 clusters: the sandbox world, then the engine's runs (bench/mesh.py).

The "before" figures come from bench/before_433837c.json: the same methods run against the
code at commit 433837c (before issue #22), recorded once, since that code is gone.

    .venv/bin/python -m bench [--runs 15] [--out docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
from datetime import date
from pathlib import Path
from typing import Any

from bench import handler_cold_start, mesh, reconcile_calls, synth, time_to_repair
from fedkeeper.config import load_config
from fedkeeper.render import table

ROOT = Path(__file__).resolve().parent.parent
BEFORE = Path(__file__).resolve().parent / "before_433837c.json"
IMPORT_TARGET_MS = 150.0
FIRST_INVOCATION_TARGET_MS = 500.0
READS_TARGET = 22

# Why each read of a converged full run is made, keyed by what the emulators log ("backend
# METHOD path", the query reduced to its parameter names). A read missing here is reported
# as unexplained in docs/BENCHMARKS.md: explain it or drop it.
WHY: dict[str, str] = {
    "aws eks:DescribeCluster": "the EKS API server's endpoint and CA, for its client (once "
    "per container: both are stable)",
    "aws secretsmanager:GetSecretValue": "the on-prem kubeconfig, for its client (once per "
    "container; again after a 401, when it was rotated)",
    "aws ec2:DescribeVpcs": "the VPC and its CIDRs: ippools covers each CIDR, checks look for "
    "overlaps (routes and vpn take the VPC id from it too)",
    "aws ec2:DescribeVpnGateways": "the VGW attached to the VPC (the CLI discovers it; the "
    "deployed functions get its id from the stack)",
    "aws ec2:DescribeVpnConnections": "tunnel state: whether on-prem can be reached this run "
    "(vpn), before anything is asked of it",
    "aws ec2:DescribeRouteTables": "propagation from the VGW and the propagated routes of every "
    "route table of the VPC (routes), one paginated call",
    "aws eks:DescribeAddon": "the vpc-cni add-on's configuration values (snat)",
    "aws cloudtrail:DescribeTrails": "the trails covering the region: API-call events reach "
    "EventBridge only through one (checks)",
    "aws cloudtrail:GetTrailStatus": "whether the covering trail logs (checks)",
    "eks GET /apis/apps/v1/namespaces/kube-system/daemonsets/aws-node": "the live aws-node "
    "environment must agree with the add-on's (snat)",
    "GET /api/v1/namespaces/calico-system/secrets?labelSelector": "every Secret the federation "
    "owns in the access namespace, one list: the access Secrets and the remote service "
    "account's token Secret (rcc)",
    "GET /apis/projectcalico.org/v3/remoteclusterconfigurations": "every RCC: the federation's "
    "and any other pointing at the same API server, never duplicated (rcc)",
    "GET /api/v1/namespaces/calico-system/serviceaccounts/tigera-federation-remote-cluster": "the "
    "service account the other cluster's Typha reads this one as (rcc)",
    "GET /apis/rbac.authorization.k8s.io/v1/clusterroles/tigera-federation-remote-cluster": "its "
    "read permissions (rcc)",
    "GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/tigera-federation-remote-cluster": (
        "their binding to it (rcc)"
    ),
    "GET /apis/rbac.authorization.k8s.io/v1/namespaces/calico-system/roles/"
    "remote-cluster-secret-access": "Typha's permission to read the access Secret (rcc)",
    "GET /apis/rbac.authorization.k8s.io/v1/namespaces/calico-system/rolebindings/"
    "remote-cluster-secret-access": "its binding to calico-typha (rcc)",
    "eks GET /apis/projectcalico.org/v3/ippools": "EKS runs Calico policy-only: it must have no "
    "enabled pool (checks)",
    "onprem GET /apis/projectcalico.org/v3/ippools": "one list for ippools (what covers each VPC "
    "CIDR) and the checks (an enabled pool, no overlap)",
    "GET /apis/projectcalico.org/v3/kubecontrollersconfigurations/default": "the Federated "
    "Services Controller is on (checks); the calico-kube-controllers Deployment is read only "
    "when this does not say so",
    "onprem GET /apis/projectcalico.org/v3/bgppeers": "on-prem advertises pod routes to the VPN "
    "router (checks)",
}


def why(read: str) -> str:
    """The one-line reason for ``read``, or a note that none is recorded."""
    rest = read.split(" ", 1)[1]
    return WHY.get(read) or WHY.get(rest) or "UNEXPLAINED: add its reason to bench/__main__.py"


def _machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _reads(calls: dict[str, int] | reconcile_calls.Calls) -> tuple[int, int]:
    c = calls if isinstance(calls, dict) else calls.__dict__
    return c["aws_r"] + c["eks_r"] + c["onprem_r"], c["aws_w"] + c["eks_w"] + c["onprem_w"]


def _cells(calls: dict[str, int]) -> list[str]:
    return [
        f"{calls['aws_r']}/{calls['aws_w']}",
        f"{calls['eks_r']}/{calls['eks_w']}",
        f"{calls['onprem_r']}/{calls['onprem_w']}",
        "{}/{}".format(*_reads(calls)),
    ]


def measure(runs: int) -> dict[str, Any]:
    """Every figure of the current checkout, as data."""
    config = load_config(ROOT / "federation.example.yaml")
    print("converged full runs ...", flush=True)
    worlds = reconcile_calls.scaling(config)
    cli = reconcile_calls.converged_calls(config, deployed=False)
    print("scoped events, scenarios ...", flush=True)
    # The handlers and the watch print their EMF metrics to stdout, as in Lambda: not here.
    with contextlib.redirect_stdout(io.StringIO()):
        events = reconcile_calls.event_rows(config)
        scenarios = reconcile_calls.scenario_rows(config)
    print("cold start ...", flush=True)
    cold = handler_cold_start.measure(ROOT, runs)
    print("synth ...", flush=True)
    cdk = synth.measure()
    print("time to repair ...", flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
        repair = time_to_repair.rows()
    print("full meshes ...", flush=True)
    meshes = [mesh.measure(n) for n in mesh.SIZES]
    return {
        "converged": {
            label: {"calls": c.calls.__dict__, "first": c.first.__dict__, "ms": c.ms}
            for label, c in worlds
        },
        "converged_reads": worlds[0][1].reads,
        "steady_reads": worlds[0][1].steady_reads,
        "converged_cli": {"calls": cli.calls.__dict__, "ms": cli.ms, "reads": cli.reads},
        "events": events,
        "scenarios": scenarios,
        "cold_start": cold,
        "synth": cdk,
        "time_to_repair": repair,
        "mesh": meshes,
    }


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _cold_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    def cell(s: dict[str, Any] | None) -> str:
        if s is None:
            return "-"
        return f"{s['wall']['median']:.0f} ms ({s['wall']['p25']:.0f}-{s['wall']['p75']:.0f}; CPU {s['cpu']['median']:.0f})"

    rows = [
        [f"import lambdas.{h}", cell(before["import"].get(h)), cell(s)]
        for h, s in after["import"].items()
    ]
    rows.append(["first invocation, no-op event", cell(before["noop"]), cell(after["noop"])])
    rows.append(
        [
            "first invocation, no-op event, traced",
            cell(before["noop_traced"]),
            cell(after["noop_traced"]),
        ]
    )
    rows.append(["a full run's first-event loads", cell(before["engine"]), cell(after["engine"])])

    def fully_cold(m: dict[str, Any]) -> str:
        if "first_full" not in m:
            return "-"
        total = (
            m["import"]["repair"]["wall"]["median"]
            + m["engine"]["wall"]["median"]
            + m["first_full"]["first"]["median"]
        )
        cpu = m["import"]["repair"]["cpu"]["median"] + m["engine"]["cpu"]["median"]
        return f"{total:.0f} ms (CPU of the import and the loads: {cpu:.0f})"

    rows.append(
        [
            "fully cold, no snapshot: import repair + first-event loads + first full run",
            fully_cold(before),
            fully_cold(after),
        ]
    )
    for key, label in (
        ("first", "first full scheduled run, code loaded"),
        ("warm", "warm full run"),
    ):
        b, a = before.get("first_full"), after.get("first_full")
        rows.append(
            [
                label,
                f"{b[key]['median']:.0f} ms ({b[key]['p25']:.0f}-{b[key]['p75']:.0f})"
                if b
                else "-",
                f"{a[key]['median']:.0f} ms ({a[key]['p25']:.0f}-{a[key]['p75']:.0f})"
                if a
                else "-",
            ]
        )
    return rows


def render(m: dict[str, Any], before: dict[str, Any], runs: int) -> str:
    """docs/BENCHMARKS.md."""
    cold, cold_before = m["cold_start"], before["cold_start"]
    worlds = m["converged"]
    reads = {label: _reads(w["calls"]) for label, w in worlds.items()}
    most = max(r for r, _ in reads.values())
    flat = len(set(reads.values())) == 1
    writes = max(w for _, w in reads.values())
    before_reads = _reads(before["converged"][next(iter(before["converged"]))]["calls"])[0]
    first_run = max(_reads(x["first"])[0] for x in worlds.values())
    imports = {h: s["wall"]["median"] for h, s in cold["import"].items()}
    first = cold.get("first_full", {}).get("first", {}).get("median")
    noop = cold["noop"]["wall"]["median"]
    cold_sum = cold["engine"]["wall"]["median"] + (first or 0)
    unexplained = [r for r in m["converged_reads"] if why(r).startswith("UNEXPLAINED")]
    load = (
        f"load average {cold['load_before']} before the cold-start runs, {cold['load_after']} after"
    )
    out: list[str] = []
    w = out.append
    w("# Benchmarks\n")
    w(
        f"Written by `make bench` (`.venv/bin/python -m bench`) on {date.today().isoformat()}, on "
        f"this project's machine ({_machine()}), in the embedded sandbox (moto + gap fills, two "
        "fake Kubernetes API servers on loopback). Do not edit it by hand: run `make bench`.\n"
    )
    w(
        "API-call counts are exact and repeatable (counted by the emulators). Times are wall "
        "clock, and move with whatever else the machine's two cores are doing (the load "
        f"average says how busy they were: {load}). Each time is a median over fresh interpreters with its interquartile range "
        "in brackets; the CPU time of the interpreter beside it is what the code cost (it "
        "leaves out waiting for a core), so a wide gap between the two is the machine's load, "
        "not the code. The *before* column is the same method run against the code at commit "
        f"433837c, recorded on {before['measured']} (`bench/before_433837c.json`; that code is "
        "gone, so its figures are kept as data, not re-measured).\n"
    )
    w("## Targets\n")
    w("| target | result |\n|---|---|")
    slowest = max(imports, key=lambda h: imports[h])
    w(
        f"| every `lambdas.<handler>` imports in ≤ {IMPORT_TARGET_MS:.0f} ms (median) | "
        f"{_verdict(max(imports.values()) <= IMPORT_TARGET_MS)}: "
        + ", ".join(f"{h} {ms:.0f} ms" for h, ms in imports.items())
        + f" (slowest: {slowest}); before: "
        + ", ".join(f"{h} {s['wall']['median']:.0f} ms" for h, s in cold_before["import"].items())
        + " |"
    )
    noop_cpu = cold["noop"]["cpu"]["median"]

    def within(ms: float) -> str:
        return "within" if ms <= FIRST_INVOCATION_TARGET_MS else "OVER"

    w(
        f"| the first invocation finishes in ≤ {FIRST_INVOCATION_TARGET_MS / 1000:.1f} s | "
        f"{_verdict(noop <= FIRST_INVOCATION_TARGET_MS and (first or 0) <= FIRST_INVOCATION_TARGET_MS)}"
        f": a no-op event {noop:.0f} ms ({within(noop)}; CPU {noop_cpu:.0f} ms: it loads the "
        f"runtime and the configuration models); the first full scheduled run of a container "
        f"whose code is loaded, as a SnapStart restore is, {first or 0:.0f} ms ({within(first or 0)}). "
        f"Fully cold, without a snapshot, that run also loads the engine, boto3, the kubernetes "
        f"client and the AWS service models: {cold_sum:.0f} ms in all |"
    )
    w(
        f"| a converged full run reads ≤ {READS_TARGET} times and writes nothing, flat from 2 to "
        f"200 route tables, 1 to 5 VPC CIDRs, 0 to 1,000 foreign pools | "
        f"{_verdict(most <= READS_TARGET and writes == 0 and flat)}: {most} reads "
        f"(before: {before_reads}), {writes} writes, "
        f"{'the same in every world' if flat else 'NOT flat'}. A fresh container's first run "
        f"reads {first_run} (every precondition, and its connections: the EKS cluster, the "
        f"on-prem credentials); the CLI, reading every precondition and discovering the VGW, "
        f"{_reads(m['converged_cli']['calls'])[0]} |"
    )
    w("")
    w("## Converged full reconcile: API calls (reads/writes) per backend\n")
    w(
        "The repair function's scheduled run as deployed: the ids the stack sets, connections "
        "built by `fedkeeper.lambda_runtime.build_connections`, as the reconciler. Each world is "
        "grown, converged, then run on a fresh container's connections once (`first run`: it "
        "also reads the EKS cluster and the on-prem credentials once per container, and every "
        "precondition of the checks) and "
        f"{reconcile_calls.STEADY_RUNS} more times; the columns show the steady run that read "
        "the most. Counted from the emulators' request logs.\n"
    )
    rows = [
        [label, *_cells(x["calls"]), str(_reads(x["first"])[0]), f"{x['ms']:.0f}"]
        for label, x in worlds.items()
    ]
    w("```")
    w(table(["world", "aws r/w", "eks r/w", "onprem r/w", "total r/w", "first run r", "ms"], rows))
    w("```\n")
    w(
        "Before (433837c), same worlds, the run after convergence on the same connections "
        "(that code read everything every run):\n"
    )
    rows = [
        [label, *_cells(x["calls"]), f"{x['ms']:.0f}"] for label, x in before["converged"].items()
    ]
    w("```")
    w(table(["world", "aws r/w", "eks r/w", "onprem r/w", "total r/w", "ms"], rows))
    w("```\n")
    cli = _reads(m["converged_cli"]["calls"])[0]
    w(
        f"The CLI (`fedkeeper plan|apply`, one run per process, discovering the VGW, every "
        f"precondition read) reads {cli} times in the baseline world besides its one-time "
        f"reads; before: {_reads(before['converged_cli']['calls'])[0]}.\n"
    )
    w("### Each read, and why it is made\n")
    w(
        "Every read of a fresh container's first converged run in the baseline world, in "
        "order; `how often` is how many of the steady runs after it made the read.\n"
    )
    w("| # | read | how often | why |\n|---|---|---|---|")
    steady = m["steady_reads"]
    for i, r in enumerate(m["converged_reads"], 1):
        n = sum(r in run for run in steady)
        often = (
            "every run"
            if n == len(steady)
            else "once per container"
            if n == 0
            else f"{n} run(s) in {len(steady)}"
        )
        w(f"| {i} | `{r}` | {often} | {why(r)} |")
    if unexplained:
        w(f"\n**{len(unexplained)} read(s) unexplained.**")
    gone = [r for r in before["converged_reads"] if r not in m["converged_reads"]]
    w(
        "\nReads the code at 433837c made and this code does not: "
        + ("; ".join(f"`{r}`" for r in gone) or "none")
        + ". The token Secret now comes from the list of owned Secrets (one list where two "
        "gets were made); the Deployment is read only when the controllers' configuration "
        "does not turn federated services on (a read no run used otherwise). The checks' "
        "preconditions (EKS: its pools and controllers' configuration; on-prem: BGP peers and "
        "controllers' configuration; CloudTrail) are things fedkeeper never writes nor acts on: "
        "a deployed function keeps them between runs and re-reads the group read longest ago, "
        "so each is at most three runs old (`fedkeeper.run.Preconditions`); a manual plan or "
        "status, and the CLI, read them all. Safety is unchanged: everything fedkeeper manages "
        "is read every run, a failed read fails that cluster's or service's part of the run "
        "(nothing is pruned), a 409 still re-reads everything, and pools are still planned on "
        "coverage.\n"
    )
    w("## Scoped event reconciles (delivered through the deployed patterns to the handlers)\n")
    w(
        "Through the handlers on the sandbox's own connections (the VGW discovered, every "
        "precondition read): the `aws` reads include the handler's read of the episodes item "
        "(DynamoDB `GetItem`) that alerting keeps.\n"
    )
    w("```")
    w(
        table(
            ["event", "scope", "aws r/w", "eks r/w", "onprem r/w", "ms"],
            m["events"],
        )
    )
    w("```\n")
    w("## Event → converged, per demo scenario\n")
    w(
        "`repair ms` is the handler's reconcile; `wall ms` covers inject + deliver + the proving rerun.\n"
    )
    w("```")
    w(table(["scenario", "repair ms", "wall ms", "ok"], m["scenarios"]))
    w("```\n")
    w("## Lambda cold start\n")
    w(
        f"`bench/handler_cold_start.py --runs {runs}`: each figure a median over fresh "
        "interpreters (the invocations over half as many), wall clock with the interquartile "
        "range and the CPU time. The handler modules import Powertools' Logger and Metrics and "
        "nothing else of weight; the runtime (pydantic, the configuration models) loads on the "
        "first invocation, boto3 when a run first touches AWS, the kubernetes client when it "
        "first touches a cluster, an AWS service's model when its client is first made, and "
        "the X-Ray SDK only when tracing is on (then on the first invocation, patching "
        "botocore). In production the functions run from SnapStart snapshots of their "
        "published versions, and a before-snapshot hook (`lambdas.load_for_snapshot`) loads the "
        "runtime, the engine, boto3 and the kubernetes client into the snapshot: a restored "
        "container's first invocation is the `code loaded` row. Without a snapshot the costs "
        "moved out of the import are paid by the first invocation instead (the `first-event "
        "loads` and `fully cold` rows); what is gone is the X-Ray SDK, unless tracing is on.\n"
    )
    w("| figure | before (433837c) | now |\n|---|---|---|")
    for row in _cold_rows(cold_before, cold):
        w("| " + " | ".join(row) + " |")
    w("")
    w(
        "Heavy modules loaded by a cold import, now: "
        + ", ".join(f"{h}: {', '.join(s['loaded']) or 'none'}" for h, s in cold["import"].items())
        + "; before: "
        + ", ".join(
            f"{h}: {', '.join(s['loaded']) or 'none'}" for h, s in cold_before["import"].items()
        )
        + ".\n"
    )
    w(
        "Where the cold import of `lambdas.repair` goes (`python -X importtime`, median self time):\n"
    )
    for label, rows_ in (("before", cold_before["importtime"]), ("now", cold["importtime"])):
        w(f"{label}:\n")
        w("```")
        w(
            table(
                ["self ms", "cumulative ms", "module"],
                [[f"{r['self_ms']:.1f}", f"{r['cumulative_ms']:.1f}", r["module"]] for r in rows_],
            )
        )
        w("```\n")
    w("## CDK\n")
    w("```text")
    w(synth.render(m["synth"]))
    w("```\n")
    w(
        "The first synth on a machine also pip-installs the Lambda dependencies into "
        "`.build/lambda-deps/`; later synths reuse it and need no network.\n"
    )
    w("## Time to repair, before the watch and with it\n")
    w(
        '`.venv/bin/python -m bench.time_to_repair`, one run per scenario. "Time to repair" '
        "runs from the moment the drift is written to the moment the repair is written. For "
        "drift inside a cluster the watch function is measured end to end in the sandbox (real "
        "watches over HTTP, the scoped reconcile, the write). Everything else is **modelled**: "
        "the handler's measured time plus the documented delivery latency of its trigger, worst "
        'case - CloudTrail "within an average of about 5 minutes of an API call" '
        "(https://aws.amazon.com/cloudtrail/faqs/; EventBridge gets CloudTrail events best "
        "effort), the TunnelState alarm's 5-minute period (1 evaluation period), the schedule's "
        'period (`rate(15 minutes)` in the example config). "Before" is the same scenario '
        "without the watch: its own event, or the schedule's sweep when no event exists.\n"
    )
    w("```")
    w(table(time_to_repair.HEADERS, m["time_to_repair"]))
    w("```\n")
    w(
        "The watch's 0.2-0.3 s is mostly its debounce (0.2 s without another change before the "
        "scoped reconcile runs). In a real account add the API server's watch fan-out and the "
        "network to each cluster.\n"
    )
    w("## A federation of N clusters\n")
    w(
        "`.venv/bin/python -m bench.mesh`: full meshes (every cluster an RCC for every other; as "
        "many sites as EKS clusters, at most 10, since a VGW takes 10 VPN connections). "
        '"build s" lays down the whole world (a fake API server per cluster, a VPC, VGW and EKS '
        "cluster per EKS cluster, every VPN and peering, the reconciler's identity everywhere); "
        '"objects/cluster" and "calls/cluster" are the fewest-most over the clusters; the engine '
        "columns are one converged full run and the first run after one join and one leave.\n"
    )
    w("```text")
    w(mesh.render(m["mesh"]))
    w("```\n")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=15, help="fresh interpreters per cold-start figure")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = p.parse_args()
    print(f"machine: {_machine()}\n", flush=True)
    before = json.loads(BEFORE.read_text())
    figures = measure(args.runs)
    text = render(figures, before, args.runs)
    args.out.write_text(text)
    print(text)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
