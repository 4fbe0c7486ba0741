"""The ``fedkeeper`` command: validate, plan, apply, status, demo.

``plan``/``apply`` run the same ``reconcile`` the Lambdas run, against real targets (local
AWS credentials; kubeconfig contexts or the config's endpoints) or, with ``--sandbox``,
against the embedded sandbox. Exit codes: 0 ok, 1 not converged / failed scenario, 2 bad
input (config, arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedkeeper.config import FederationConfig, config_warnings, load_config
from fedkeeper.errors import ConfigError, FedkeeperError
from fedkeeper.model import Report, Scope

DEFAULT_CONFIGS = ("federation.yaml", "federation.example.yaml")


def _default_config() -> str:
    for name in DEFAULT_CONFIGS:
        if Path(name).exists():
            return name
    return DEFAULT_CONFIGS[0]


def _load(path: str | None) -> FederationConfig:
    return load_config(path or _default_config())


def _print_errors(title: str, errors: Sequence[str]) -> None:
    print(title, file=sys.stderr)
    for e in errors:
        print(f"  - {e}", file=sys.stderr)


# --- rendering ---------------------------------------------------------------------------


def render_report(report: Report | dict[str, Any], *, title: str | None = None) -> str:
    """A Report (or its JSON, e.g. a Lambda's answer) for people: changes, findings,
    deferred work and the verdict."""
    d = report.to_dict() if isinstance(report, Report) else report
    lines: list[str] = []
    head = title or f"{d['mode']} · scope {', '.join(d['scope']) or '(none)'}"
    if d.get("trigger"):
        head += f" · trigger: {d['trigger']}"
    lines.append(head)
    if d["changes"]:
        lines.append("  changes:")
        for c in d["changes"]:
            err = f" — {c['error']}" if c.get("error") else ""
            lines.append(f"    [{c['result']}] {c['action']} {c['target']}{err}")
            lines.append(f"        why: {c['reason']}")
    else:
        lines.append("  changes: none")
    for f in d["findings"]:
        lines.append(f"  {f['severity']:<7} {f['check']}: {f['message']}")
    for x in d["deferred"]:
        lines.append(f"  deferred {x['target']}: {x['reason']}")
    for e in d.get("errors", []):
        kind = "retryable" if e["retryable"] else "permanent"
        lines.append(f"  error ({kind}) {e['invariant']}: {e['error']}")
    calls = ", ".join(f"{k} {v}" for k, v in d["api_calls"].items())
    verdict = "converged" if d["converged"] else "NOT converged"
    lines.append(f"  {verdict} · api calls: {calls} · {d['duration_ms']} ms")
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    path = args.config or _default_config()
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        _print_errors(f"{path}: {len(exc.errors)} error(s)", exc.errors)
        return 2
    onprem = cfg.onprem
    print(f"{path}: valid")
    for warning in config_warnings(cfg, datetime.now(UTC).date()):
        print(f"  warning: {warning}")
    print(f"  federation {cfg.name} · mode {cfg.mode.value} · region {cfg.aws.region}")
    print(
        f"  VPC {cfg.aws.vpc.cidr} over {cfg.aws.vpc.az_count} AZs · VGW ASN "
        f"{cfg.aws.vpn.vgw_asn} ↔ CGW {cfg.aws.vpn.customer_gateway.ip} ASN "
        f"{cfg.aws.vpn.customer_gateway.bgp_asn}"
    )
    print(
        f"  EKS {cfg.eks.cluster_name} ({cfg.eks.kubernetes_version}) ↔ on-prem "
        f"{onprem.cluster_name} at {onprem.api_endpoint}"
    )
    print(
        f"  on-prem hosts {', '.join(map(str, onprem.host_cidrs))} · pods "
        f"{', '.join(map(str, onprem.pod_cidrs))} · services "
        f"{', '.join(map(str, onprem.service_cidrs))}"
    )
    print(
        f"  RCCs: {cfg.eks_rcc_name} (on EKS) and {cfg.onprem_rcc_name} (on-prem) · disabled "
        f"pools {cfg.federation.disabled_pool_policy.value} · schedule {cfg.reconcile.schedule}"
    )
    return 0


def _scope(args: argparse.Namespace) -> Scope:
    names = [n.strip() for part in (args.scope or []) for n in part.split(",") if n.strip()]
    return Scope.parse(names or None)


def _real_connections(cfg: FederationConfig, args: argparse.Namespace) -> Any:
    import boto3
    from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION

    from fedkeeper.service import Connections, Targets

    session = boto3.Session(profile_name=args.profile, region_name=args.region or cfg.aws.region)

    def context_config(context: str | None) -> dict[str, Any] | None:
        if not context:
            return None
        import yaml

        path = os.path.expanduser(args.kubeconfig or KUBE_CONFIG_DEFAULT_LOCATION)
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        return {**data, "current-context": context}

    return Connections(
        cfg,
        session,
        targets=Targets(vpc_id=args.vpc_id),
        eks_kubeconfig=context_config(args.eks_context),
        onprem_kubeconfig=context_config(args.onprem_context),
    )


def cmd_reconcile(args: argparse.Namespace) -> int:
    from fedkeeper.service import effective_mode, reconcile

    cfg = _load(args.config)
    try:
        scope = _scope(args)
    except ValueError as exc:
        _print_errors("invalid arguments:", [f"--scope: {exc}"])
        return 2
    mode = effective_mode(args.command, cfg, os.environ.get("FEDKEEPER_MODE"))
    try:
        if args.sandbox:
            from fedkeeper.sandbox.world import Sandbox

            with Sandbox.start(cfg) as sb:
                report = reconcile(sb.connections(), scope, mode)
        else:
            conns = _real_connections(cfg, args)
            report = reconcile(conns, scope, mode)
    except (FedkeeperError, OSError) as exc:
        _print_errors("fedkeeper could not run:", [str(exc)])
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_report(report))
    return 0 if report.converged or (mode == "plan" and not report.errors) else 1


def cmd_adopt(args: argparse.Namespace) -> int:
    """``fedkeeper adopt [--apply] [--only TARGET]``: see :mod:`fedkeeper.adopt`."""
    from fedkeeper.adopt import adopt
    from fedkeeper.service import effective_mode

    cfg = _load(args.config)
    mode = effective_mode("apply" if args.apply else "plan", cfg, os.environ.get("FEDKEEPER_MODE"))
    try:
        if args.sandbox:
            from fedkeeper.sandbox.scenarios import SCENARIOS
            from fedkeeper.sandbox.world import Sandbox

            with Sandbox.start(cfg) as sb:
                if args.scenario:
                    SCENARIOS[args.scenario].inject(sb)
                report = adopt(sb.connections(), mode, only=args.only)
        else:
            report = adopt(_real_connections(cfg, args), mode, only=args.only)
    except KeyError:
        _print_errors("invalid arguments:", [f"--scenario: unknown {args.scenario!r}"])
        return 2
    except (FedkeeperError, OSError) as exc:
        _print_errors("fedkeeper could not run:", [str(exc)])
        return 1
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_report(report))
    return 0 if not report.errors and all(c.error is None for c in report.changes) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from fedkeeper.sandbox.demo import run_demo

    cfg = _load(args.config)
    if args.event:
        from fedkeeper.sandbox.demo import run_event_demo

        if args.scenario and len(args.scenario) > 1:
            _print_errors("invalid arguments:", ["--scenario: give at most one with --event"])
            return 2
        scenario = args.scenario[0] if args.scenario else None
        return run_event_demo(cfg, args.event, scenario=scenario, as_json=args.json)
    return run_demo(cfg, scenarios=args.scenario, as_json=args.json, list_only=args.list)


def _target_args(r: argparse.ArgumentParser) -> None:
    r.add_argument("--config", "-c", help="federation.yaml path")
    r.add_argument("--sandbox", action="store_true", help="run against the embedded sandbox")
    r.add_argument("--profile", help="AWS profile (default: the environment's)")
    r.add_argument("--region", help="AWS region (default: the config's)")
    r.add_argument("--vpc-id", help="VPC id (default: discovered by the federation tag)")
    r.add_argument("--kubeconfig", help="kubeconfig file for --eks-context/--onprem-context")
    r.add_argument("--eks-context", help="reach EKS through this kubeconfig context")
    r.add_argument(
        "--onprem-context",
        help="reach on-prem through this kubeconfig context (default: the secret)",
    )


def cmd_status(args: argparse.Namespace) -> int:
    from fedkeeper.status import federation_status, render_status

    cfg = _load(args.config)
    try:
        if args.sandbox:
            from fedkeeper.sandbox.scenarios import SCENARIOS
            from fedkeeper.sandbox.world import Sandbox

            if args.scenario and args.scenario not in SCENARIOS:
                _print_errors(
                    "invalid arguments:",
                    [f"--scenario: unknown {args.scenario!r}; use one of {', '.join(SCENARIOS)}"],
                )
                return 2
            with Sandbox.start(cfg) as sb:
                if args.scenario:
                    SCENARIOS[args.scenario].inject(sb)
                status = federation_status(sb.connections())
        elif args.scenario:
            _print_errors("invalid arguments:", ["--scenario: only with --sandbox"])
            return 2
        else:
            status = federation_status(_real_connections(cfg, args))
    except (FedkeeperError, OSError) as exc:
        _print_errors("fedkeeper could not run:", [str(exc)])
        return 1
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(render_status(status, colour=sys.stdout.isatty()))
    return 0 if status.healthy else 1


def cmd_invoke(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    payload: dict[str, Any] = {"action": args.action}
    names = [n.strip() for part in (args.scope or []) for n in part.split(",") if n.strip()]
    if names:
        payload["scope"] = names
    function = args.function or f"{cfg.name}-repair"

    def call(session: Any) -> tuple[dict[str, Any] | str, str | None]:
        from fedkeeper.adapters.aws import aws_errors

        with aws_errors():
            resp = session.client("lambda").invoke(
                FunctionName=function,
                Qualifier=args.qualifier,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        raw = resp["Payload"].read().decode("utf-8", "replace")
        try:
            body: dict[str, Any] | str = json.loads(raw)
        except ValueError:
            body = raw
        return body, resp.get("FunctionError")

    try:
        if args.sandbox:
            from fedkeeper.sandbox.world import Sandbox

            with Sandbox.start(cfg) as sb:
                body, error = call(sb.aws_session())
        else:
            import boto3

            body, error = call(
                boto3.Session(profile_name=args.profile, region_name=args.region or cfg.aws.region)
            )
    except (FedkeeperError, OSError) as exc:
        _print_errors(f"could not invoke {function}:", [str(exc)])
        return 1
    if args.json or not isinstance(body, dict) or "mode" not in body:
        print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
    else:
        print(render_report(body))
    if error:
        _print_errors(f"{function} failed ({error})", [str(body)])
        return 1
    if isinstance(body, dict) and "error" in body:
        return 2
    return 0 if isinstance(body, dict) and (body.get("converged") or args.action != "apply") else 1


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from fedkeeper import bootstrap

    cfg = _load(args.config)
    if not args.apply:
        print("# fedkeeper's identity on the on-prem cluster. Apply with:")
        print("#   fedkeeper onprem-bootstrap | kubectl --context <on-prem> apply -f -")
        print("# or let fedkeeper apply it and write the kubeconfig:")
        print("#   fedkeeper onprem-bootstrap --apply --context <on-prem>")
        print("# then store that kubeconfig where the Lambdas read it:")
        print(f"#   {bootstrap.store_command(cfg, args.write_kubeconfig)}")
        print(bootstrap.manifests_yaml(cfg), end="")
        return 0
    if not args.context:
        _print_errors("invalid arguments:", ["--context: name the on-prem kubeconfig context"])
        return 2
    from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION

    from fedkeeper.adapters.kube import KubeCluster, resource_types

    path = os.path.expanduser(args.kubeconfig or KUBE_CONFIG_DEFAULT_LOCATION)
    try:
        import yaml

        with open(path, encoding="utf-8") as fh:
            kubeconfig = yaml.safe_load(fh)
        api = cfg.federation.calico_api
        cluster = KubeCluster.from_kubeconfig(
            "onprem", kubeconfig, resource_types(api.group, api.version), context=args.context
        )
        for line in bootstrap.apply_bootstrap(cluster, cfg):
            print(line)
        out = bootstrap.fedkeeper_kubeconfig(cluster, cfg)
    except (FedkeeperError, OSError) as exc:
        _print_errors("bootstrap failed:", [str(exc)])
        return 1
    fd = os.open(args.write_kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(out, fh, sort_keys=False)
    print(f"wrote {args.write_kubeconfig} (token auth for ServiceAccount fedkeeper/fedkeeper)")
    print("store it where the Lambdas read it:")
    print(f"  {bootstrap.store_command(cfg, args.write_kubeconfig)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fedkeeper",
        description="Keep a Calico Enterprise federation between EKS and on-prem consistent.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check federation.yaml and summarise it")
    v.add_argument("config", nargs="?", help="path (default: federation.yaml)")
    v.set_defaults(func=cmd_validate)

    for name, help_ in (
        ("plan", "show what would be repaired; writes nothing"),
        ("apply", "repair drift now"),
    ):
        r = sub.add_parser(name, help=help_)
        _target_args(r)
        r.add_argument(
            "--scope",
            action="append",
            help="invariants to reconcile (routes,snat,ippools,rcc,vpn,checks); default all",
        )
        r.add_argument("--json", action="store_true", help="print the Report as JSON")
        r.set_defaults(func=cmd_reconcile)

    st = sub.add_parser("status", help="the federation's health, with reasons (writes nothing)")
    _target_args(st)
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.add_argument(
        "--scenario",
        help="with --sandbox: apply this demo scenario's fault first, to see how it shows",
    )
    st.set_defaults(func=cmd_status)

    ad = sub.add_parser(
        "adopt",
        help="list hand-made objects doing fedkeeper's job; --apply "
        "labels them as owned (names and specs kept)",
    )
    _target_args(ad)
    ad.add_argument("--apply", action="store_true", help="take them over (default: list only)")
    ad.add_argument("--only", action="append", metavar="TARGET", help="adopt only this target")
    ad.add_argument("--scenario", help="with --sandbox: apply this demo scenario's fault first")
    ad.add_argument("--json", action="store_true", help="print the Report as JSON")
    ad.set_defaults(func=cmd_adopt)

    inv = sub.add_parser("invoke", help="invoke the deployed repair Lambda and print its Report")
    inv.add_argument("action", choices=["plan", "apply", "status"])
    inv.add_argument("--config", "-c", help="federation.yaml path")
    inv.add_argument("--scope", action="append", help="invariants (comma-separated)")
    inv.add_argument("--function", help="function name (default: <name>-repair)")
    inv.add_argument("--qualifier", default="live", help="alias or version (default: live)")
    inv.add_argument("--profile", help="AWS profile")
    inv.add_argument("--region", help="AWS region (default: the config's)")
    inv.add_argument("--json", action="store_true", help="print the raw response")
    inv.add_argument(
        "--sandbox", action="store_true", help="invoke the sandbox's emulated deployment"
    )
    inv.set_defaults(func=cmd_invoke)

    b = sub.add_parser(
        "onprem-bootstrap",
        help="the on-prem ServiceAccount and RBAC fedkeeper needs, and how to store its kubeconfig",
    )
    b.add_argument("--config", "-c", help="federation.yaml path")
    b.add_argument("--apply", action="store_true", help="create them through --context")
    b.add_argument("--context", help="kubeconfig context of the on-prem cluster (with --apply)")
    b.add_argument("--kubeconfig", help="kubeconfig file (default: ~/.kube/config)")
    b.add_argument(
        "--write-kubeconfig",
        default="onprem-kubeconfig.yaml",
        help="with --apply: where to write fedkeeper's kubeconfig (mode 0600)",
    )
    b.set_defaults(func=cmd_bootstrap)

    d = sub.add_parser("demo", help="run the whole system on the embedded sandbox")
    d.add_argument("--config", "-c", help="federation.yaml path (default: the example)")
    d.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    d.add_argument("--json", action="store_true", help="print results as JSON")
    d.add_argument("--list", action="store_true", help="list the scenarios and exit")
    d.add_argument(
        "--event",
        metavar="FILE",
        help="deliver this EventBridge event (JSON) through the deployed rules and print the "
        "handler's Report; with --scenario, that scenario's fault is applied first",
    )
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:  # any command, one answer: each error with its field and fix
        _print_errors("invalid configuration:", exc.errors)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
