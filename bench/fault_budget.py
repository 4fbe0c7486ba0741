"""Worst-case run time per fault class against the repair Lambda's 300 s timeout.

Each case breaks one cluster or one AWS service in a fresh sandbox, drifts everything, and
runs one full reconcile with the deployed time budget (280 s: 300 s less the handler's
margin) and the production timeouts. Run time is measured on the sandbox clock: real time
plus what the emulators charged to it (delayed answers, timed-out AWS attempts), so nothing
sleeps for long except a real hang (two read timeouts of 10 s per hung cluster).

    .venv/bin/python -m bench.fault_budget
"""

from __future__ import annotations

from collections.abc import Callable

from fedkeeper.config import load_config
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.kube_server import FakeKubeServer

ROOT_CONFIG = "federation.example.yaml"
BUDGET_S = 280.0
LAMBDA_TIMEOUT_S = 300

KUBE: dict[str, Callable[[FakeKubeServer], None]] = {
    "5xx": lambda s: s.fail_next(503, times=10_000),
    "401": lambda s: s.fail_next(401, times=10_000),
    "403": lambda s: s.fail_next(403, times=10_000),
    "404 on a CRD": lambda s: s.fail_next(404, times=10_000, path_contains="/apis/projectcalico"),
    "connection refused": lambda s: s.set_unreachable(True),
    "hang (no answer)": lambda s: s.hang(True),
    "slow (9 s per answer)": lambda s: s.delay_answers(9.0),
}
AWS = {"ec2": "DescribeVpcs", "eks": "DescribeAddon", "secretsmanager": "GetSecretValue"}


def _drift(sb: Sandbox) -> None:
    def nat(p: dict[str, object]) -> None:
        p["spec"]["natOutgoing"] = True  # type: ignore[index]

    sb.onprem_server.mutate("projectcalico.org/v3", "IPPool", pool_name("10.100.0.0/16"), None, nat)
    sb.eks_server.delete_object("projectcalico.org/v3", "RemoteClusterConfiguration", "onprem")


def _case(inject: Callable[[Sandbox], None]) -> tuple[float, bool]:
    with Sandbox.start(load_config(ROOT_CONFIG)) as sb:
        _drift(sb)
        sb.connections().forget_onprem()
        inject(sb)
        start = sb.clock.monotonic()  # real time plus what the emulators charged
        report = sb.reconcile(None, "apply", deadline_s=BUDGET_S)
        took = sb.clock.monotonic() - start
        sb.eks_server.clear_faults()
        sb.onprem_server.clear_faults()
        sb.onprem_server.set_unreachable(False)
        sb.eks_server.set_unreachable(False)
        sb.aws.clear_faults()
        return took, bool(report.failed_targets or report.deferred)


def main() -> None:
    print(
        f"Worst-case run time per fault class (budget {BUDGET_S:.0f} s, Lambda {LAMBDA_TIMEOUT_S} s)"
    )
    print(f"{'target':<16}{'fault':<24}{'run time':>10}  reported")
    for cluster in ("eks", "onprem"):
        for name, fault in KUBE.items():

            def inject(
                sb: Sandbox, f: Callable[[FakeKubeServer], None] = fault, c: str = cluster
            ) -> None:
                f(sb.eks_server if c == "eks" else sb.onprem_server)

            took, named = _case(inject)
            print(f"{cluster:<16}{name:<24}{took:>9.1f}s  {'yes' if named else 'no'}", flush=True)
    for service, op in AWS.items():
        for name in ("throttling", "5xx", "timeout (10 s)"):

            def inject_aws(sb: Sandbox, n: str = name, svc: str = service, o: str = op) -> None:
                if n == "throttling":
                    sb.aws.fail_next(svc, o, "Throttling", times=10_000)
                elif n == "5xx":
                    sb.aws.fail_next(svc, o, "ServiceUnavailable", status=503, times=10_000)
                else:
                    sb.aws.time_out_next(svc, o, times=10_000, seconds=10.0)

            took, named = _case(inject_aws)
            label = f"aws/{service}"
            print(f"{label:<16}{name:<24}{took:>9.1f}s  {'yes' if named else 'no'}", flush=True)


if __name__ == "__main__":
    main()
