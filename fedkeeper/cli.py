"""The ``fedkeeper`` command: its subcommands (:data:`COMMANDS`), exit codes and errors.

``plan``/``apply``/``status`` run the same ``reconcile`` the Lambdas run, against real
targets (local AWS credentials; kubeconfig contexts or the config's endpoints) or, with
``--sandbox``, against the embedded sandbox.

One contract for every command (:data:`EXIT_CODES`): 0 converged or healthy, 1 drift planned
or left or a failure, 2 bad input, 130 interrupted. An ordinary mistake (no config, a bad
profile, no credentials, a malformed kubeconfig, an unwritable output path, a missing extra)
is one line on stderr that names the fix, never a traceback; it is found before anything is
written.

Adding a command: write ``cmd_x(args) -> int`` and a ``_add_x(sub)`` that builds its parser
(with :func:`_command`), then list ``_add_x`` in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from fedkeeper.config import (
    REGION_PATTERN,
    FederationConfig,
    Mode,
    ModeName,
    config_warnings,
    load_config,
)
from fedkeeper.errors import ConfigError, FedkeeperError, UnreachableError
from fedkeeper.model import ALL_INVARIANTS, Report, Scope
from fedkeeper.render import Progress, colour_wanted, render_report, render_status
from fedkeeper.schema import read_config_file
from fedkeeper.topology import EksCluster, OnPremCluster, migrate
from fedkeeper.wording import did_you_mean, shown

EXIT_OK, EXIT_DRIFT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = """\
exit codes:
  0    converged, or healthy
  1    drift planned or left, or a failure
  2    bad input (config, arguments, profile, credentials, kubeconfig, paths)
  130  interrupted (Ctrl-C)"""

DEFAULT_CONFIG = "federation.yaml"
# The CLI's run budget: like the Lambda's (its timeout less a margin), but a person waits.
DEFAULT_DEADLINE_S = 280.0
# Below a minute not even one AWS call's worst case (its retries and timeouts) fits.
MIN_DEADLINE_S = 60.0
MAX_DEADLINE_S = 3600.0
EXAMPLE_CONFIG = "federation.example.yaml"
_SANDBOX_PORT = 4570  # fedkeeper.sandbox.persistent.DEFAULT_PORT (checked by a test)
# What the sandbox extra installs (pyproject's [project.optional-dependencies] sandbox, with
# moto[server]'s own), by import name; and the core requirements' import names.
SANDBOX_MODULES = frozenset(
    {"moto", "werkzeug", "flask", "flask_cors", "responses", "xmltodict", "rich"}
    | {"jsonschema", "cryptography"}
)
CORE_MODULES = {
    "boto3": "boto3",
    "botocore": "boto3",
    "kubernetes": "kubernetes",
    "pydantic": "pydantic",
    "yaml": "PyYAML",
    "aws_lambda_powertools": "aws-lambda-powertools",
}
NO_CREDENTIALS = (
    "no AWS credentials found; run `aws configure` (or `aws sso login`), pass --profile NAME, "
    "or use --sandbox to try fedkeeper without an AWS account"
)
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SCOPES = ", ".join(i.value for i in ALL_INVARIANTS)


class UsageError(Exception):
    """Bad input: printed as one line (exit 2); nothing has been written."""


class Failure(Exception):  # noqa: N818 - the exit-1 outcome, not a programming error
    """The command could not do its work (exit 1); one line says what to do."""


def _error(message: str) -> None:
    print(f"fedkeeper: {message}", file=sys.stderr)


# --- config, mode and header ----------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    path: str
    config: FederationConfig


def _config_path(args: argparse.Namespace) -> str:
    given: str | None = getattr(args, "config", None)
    if given:
        return given
    if Path(DEFAULT_CONFIG).is_file():
        return DEFAULT_CONFIG
    hint = (
        f"`make demo`, or `fedkeeper demo -c {EXAMPLE_CONFIG}`"
        if args.command == "demo"
        else f"`fedkeeper {args.command} -c PATH`"
    )
    raise UsageError(
        f"no {DEFAULT_CONFIG} here and no -c/--config given; start one with `fedkeeper init` "
        f"(then edit it), or name yours: {hint}"
    )


def _load(args: argparse.Namespace, engine: bool = True) -> Loaded:
    """The config the command names. ``engine``: the command runs today's two-cluster engine,
    so a federation of more clusters is refused with what is not wired yet (ConfigError)."""
    path = _config_path(args)
    p = Path(path)
    if not p.exists():
        raise UsageError(
            f"{path}: no such file; pass the path of your federation.yaml, or create it with "
            f"`fedkeeper init {path}`"
        )
    config = load_config(p)
    if engine:
        config.require_two_clusters()
    return Loaded(path, config)


@dataclass(frozen=True)
class ModeChoice:
    mode: ModeName
    switch: str | None  # where the kill switch came from, when it is on


def env_mode() -> str | None:
    """FEDKEEPER_MODE, checked: unset/empty, plan or apply; anything else is refused."""
    raw = os.environ.get("FEDKEEPER_MODE")
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value not in ("plan", "apply"):
        raise UsageError(
            f"FEDKEEPER_MODE={raw!r} is not a mode; set FEDKEEPER_MODE=plan (the kill switch: "
            "nothing is written) or FEDKEEPER_MODE=apply, or unset it"
        )
    return value


def choose_mode(requested: ModeName, loaded: Loaded) -> ModeChoice:
    """Plan wins: ``mode: plan`` in the config or FEDKEEPER_MODE=plan stops every write."""
    env = env_mode()
    if env == "plan":
        return ModeChoice("plan", "FEDKEEPER_MODE=plan")
    if loaded.config.mode is Mode.PLAN:
        return ModeChoice("plan", f"mode: plan in {loaded.path}")
    return ModeChoice(requested, None)


def header(command: str, loaded: Loaded, account: str, region: str, extra: str = "") -> str:
    cfg = loaded.config
    return (
        f"fedkeeper {command} · config {loaded.path} · federation {cfg.name} · "
        f"account {account} · region {region}{extra}"
    )


def kill_switch_line(requested: str, choice: ModeChoice) -> str | None:
    if choice.switch is None:
        return None
    if requested == "apply":
        return f"KILL SWITCH ON ({choice.switch}): planning only, nothing will be written"
    return f"kill switch on ({choice.switch}): fedkeeper writes nothing"


# --- arguments checked before anything runs -------------------------------------------------


def _scope(args: argparse.Namespace) -> Scope:
    """--scope, repeatable and comma-separated; an empty value is refused, absent means all."""
    raw: list[str] | None = getattr(args, "scope", None)
    if raw is None:
        return Scope.everything()
    names = [n.strip() for part in raw for n in part.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--scope is empty; name invariants ({_SCOPES}) or leave --scope out")
    try:
        return Scope.parse(names)
    except ValueError as exc:
        raise UsageError(f"--scope: {exc}") from None


def _known_regions() -> list[str]:
    """Every region botocore's endpoint data names (offline, no AWS call)."""
    import botocore.session

    core = botocore.session.get_session()
    return [
        region
        for partition in core.get_available_partitions()
        for region in core.get_available_regions("ec2", partition_name=partition)
    ]


def _check_region(region: str) -> None:
    """--region names a region AWS has, or UsageError with the nearest one."""
    known = _known_regions()
    if REGION_PATTERN.fullmatch(region) and region in known:
        return
    raise UsageError(
        f"--region {shown(region)} is not an AWS region{did_you_mean(region, known)}; write one "
        "such as eu-west-1 (`aws ec2 describe-regions` lists them; a region newer than this "
        "boto3 needs `pip install -U boto3`)"
    )


def _check_target_args(args: argparse.Namespace, loaded: Loaded | None = None) -> None:
    region = getattr(args, "region", None)
    if region:
        _check_region(region)
    sandbox = getattr(args, "sandbox", False)
    if region and sandbox and loaded is not None and region != loaded.config.aws.region:
        raise UsageError(
            f"--region {region}: the sandbox runs in the config's region "
            f"({loaded.config.aws.region}, aws.region in {loaded.path}); leave --region out, "
            "or change aws.region in the config"
        )
    if getattr(args, "vpc_id", None) and not _VPC_ID.fullmatch(args.vpc_id):
        raise UsageError(f"--vpc-id {args.vpc_id!r} is not a VPC id; write e.g. vpc-0abc1234")


def _kubeconfig_path(arg: str | None) -> str:
    if arg:
        return os.path.expanduser(arg)
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return os.path.expanduser(first or "~/.kube/config")


def load_kubeconfig(arg: str | None, context: str) -> dict[str, Any]:
    """The kubeconfig with ``context`` current; UsageError names the problem and the fix."""
    import yaml

    path = _kubeconfig_path(arg)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise UsageError(
            f"kubeconfig {path}: no such file; pass --kubeconfig PATH (for context {context!r})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"kubeconfig {path}: cannot be read ({exc}); pass --kubeconfig PATH"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(
            f"kubeconfig {path}: not valid YAML{where}; fix it or pass --kubeconfig with "
            "another file"
        ) from None
    contexts = data.get("contexts") if isinstance(data, dict) else None
    if not isinstance(contexts, list):
        raise UsageError(
            f"kubeconfig {path}: not a kubeconfig (no contexts list); pass --kubeconfig with "
            "the file `kubectl config view --raw` shows"
        )
    names = [c.get("name") for c in contexts if isinstance(c, dict)]
    if context not in names:
        raise UsageError(
            f"kubeconfig {path} has no context {context!r}; use one of: "
            f"{', '.join(map(str, names)) or '(none)'} (`kubectl config get-contexts`)"
        )
    return {**data, "current-context": context}


def _check_output_path(path: str, flag: str) -> None:
    """Refuse an output path that cannot be written, before anything else is done."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a directory; name a file, e.g. {p / 'kubeconfig'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(
            f"{flag} {path}: folder {parent} does not exist; `mkdir -p {parent}` or choose "
            "another path"
        )
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"{flag} {path}: not writable; choose another path")


# --- AWS ----------------------------------------------------------------------------------


def aws_session(args: argparse.Namespace, cfg: FederationConfig) -> tuple[Any, str]:
    """A boto3 session on the caller's credentials, and its account (one STS call)."""
    import boto3
    import botocore.exceptions as bex
    from botocore.config import Config

    region = args.region or cfg.aws.region
    profile = args.profile
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        credentials = session.get_credentials()
    except bex.ProfileNotFound as exc:
        name = profile or os.environ.get("AWS_PROFILE") or str(exc)
        where = "--profile" if profile else "AWS_PROFILE"
        raise UsageError(
            f"AWS profile {name!r} ({where}) is not configured; see `aws configure "
            "list-profiles`, or create it with `aws configure --profile NAME`"
        ) from None
    except bex.BotoCoreError as exc:
        raise UsageError(f"AWS configuration: {exc}; check it with `aws configure list`") from None
    if credentials is None:
        raise UsageError(NO_CREDENTIALS)
    sts = session.client("sts", config=Config(retries={"max_attempts": 2}, connect_timeout=10))
    try:
        account = str(sts.get_caller_identity()["Account"])
    except bex.NoCredentialsError:
        raise UsageError(NO_CREDENTIALS) from None
    except bex.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "denied")
        raise UsageError(
            f"AWS refused the credentials ({code}); refresh them (`aws sso login` or "
            "`aws configure`), or pass another --profile"
        ) from None
    except (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError) as exc:
        raise Failure(
            f"cannot reach AWS STS in {region} ({exc}); check the network or proxy"
        ) from None
    except bex.BotoCoreError as exc:  # expired SSO token, a failing credential_process, …
        raise UsageError(
            f"AWS credentials could not be used ({exc}); refresh them (`aws sso login` or "
            "`aws configure`), or pass another --profile"
        ) from None
    return session, account


def _connections(args: argparse.Namespace, loaded: Loaded, session: Any) -> Any:
    from fedkeeper.service import Connections, Targets

    return Connections(
        loaded.config,
        session,
        targets=Targets(vpc_id=args.vpc_id),
        eks_kubeconfig=args.eks_kubeconfig,
        onprem_kubeconfig=args.onprem_kubeconfig,
    )


def _prepare_target(args: argparse.Namespace, loaded: Loaded) -> None:
    """Check every target argument (kubeconfigs included) before any AWS call."""
    _check_target_args(args, loaded)
    args.eks_kubeconfig = (
        load_kubeconfig(args.kubeconfig, args.eks_context) if args.eks_context else None
    )
    args.onprem_kubeconfig = (
        load_kubeconfig(args.kubeconfig, args.onprem_context) if args.onprem_context else None
    )
    if getattr(args, "scenario", None) and not args.sandbox:
        raise UsageError("--scenario needs --sandbox (it breaks the sandbox, never a real account)")


def _scenario_named(name: str, flag: str = "--scenario") -> Any:
    from fedkeeper.sandbox.scenarios import SCENARIOS

    if name not in SCENARIOS:
        raise UsageError(
            f"{flag}: unknown {shown(name)}{did_you_mean(name, SCENARIOS)}; use one of "
            f"{', '.join(SCENARIOS)} (`fedkeeper demo --list` describes them)"
        )
    return SCENARIOS[name]


def _scenario(args: argparse.Namespace) -> Any:
    name: str | None = getattr(args, "scenario", None)
    return None if name is None else _scenario_named(name)


@dataclass(frozen=True)
class SandboxTarget:
    """Which sandbox a ``--sandbox`` command acts on: the running world, or a throwaway one."""

    world: Any  # fedkeeper.sandbox.persistent.RunningWorld, or None: a throwaway sandbox
    scenario: str | None = None

    @property
    def running(self) -> bool:
        return self.world is not None

    def note(self) -> str:
        """What the first line says about it."""
        if self.world is None:
            return " · throwaway sandbox (none running)"
        state = self.world.state
        since = time.strftime("%H:%M:%S", time.localtime(state.started))
        return f" · running sandbox (pid {state.pid}, up since {since})"


def _sandbox_target(args: argparse.Namespace, loaded: Loaded) -> SandboxTarget:
    """The running world when there is one (checked against the config), else a throwaway."""
    from fedkeeper.sandbox import persistent

    scenario: str | None = getattr(args, "scenario", None)
    try:
        found = persistent.find_world()
    except persistent.SandboxStateError as exc:
        raise Failure(str(exc)) from None
    if found.condition == "none":
        import fedkeeper.sandbox.world  # noqa: F401 - a missing sandbox extra is said before anything runs

        return SandboxTarget(None, scenario)
    if found.condition != "running":
        raise Failure(
            f"{persistent.describe(found)}; `fedkeeper sandbox down` cleans up (commands then "
            "start a throwaway sandbox each), `fedkeeper sandbox up -c PATH` starts a new one"
        )
    state = found.state
    assert state is not None
    if scenario:
        raise UsageError(
            f"--scenario breaks a throwaway sandbox, but one is running (pid {state.pid}); "
            f"break the running one with `fedkeeper sandbox break {scenario}`, or stop it "
            "with `fedkeeper sandbox down`"
        )
    if state.config_digest != persistent.config_digest(loaded.config):
        raise UsageError(
            f"the running sandbox was started from {state.config_path} (federation "
            f"{state.federation}), not {loaded.path}; run with -c {state.config_path}, or "
            f"`fedkeeper sandbox down` then `fedkeeper sandbox up -c {loaded.path}`"
        )
    return SandboxTarget(persistent.RunningWorld(found))


@contextlib.contextmanager
def _sandbox_connections(
    target: SandboxTarget, loaded: Loaded, progress: Progress
) -> Iterator[Any]:
    """Connections on the running world's endpoints, or on a throwaway sandbox (with the
    scenario's fault applied) torn down on leaving."""
    if target.world is not None:
        with target.world.connections(loaded.config) as conns:
            yield conns
        return
    from fedkeeper.sandbox.world import Sandbox

    progress.show("starting the sandbox…")
    with Sandbox.start(loaded.config) as sb:
        if target.scenario is not None:
            _scenario_named(target.scenario).inject(sb)
        yield sb.connections()


def fix_commands(
    loaded: Loaded, *, sandbox: bool, scenario: str | None = None, running: bool = False
) -> dict[str, str]:
    """For each invariant, the command that repairs it (or what to look at when fedkeeper
    cannot write it), as it works where the status came from: the real account, the running
    sandbox, or (``scenario``) a new throwaway sandbox with the same fault."""
    target = f" -c {loaded.path}" + (" --sandbox" if sandbox else "")
    if sandbox and scenario and not running:
        target += f" --scenario {scenario}"
    region = loaded.config.aws.region
    fixes = {
        inv.value: f"fedkeeper apply --scope {inv.value}{target}"
        for inv in ALL_INVARIANTS
        if inv.value not in ("vpn", "checks")
    }
    if not sandbox:
        fixes["vpn"] = (
            "bring a tunnel up on the on-prem router; watch it with "
            f"`aws ec2 describe-vpn-connections --region {region}`"
        )
    elif running:
        fixes["vpn"] = (
            "bring a tunnel up on the on-prem router; in the sandbox: "
            "`fedkeeper sandbox tunnels up`"
        )
    else:
        fixes["vpn"] = (
            "bring a tunnel up on the on-prem router; rehearse it on a running sandbox: "
            f"`fedkeeper sandbox up -c {loaded.path}`, `fedkeeper sandbox break "
            "tunnels-down-then-up`, `fedkeeper sandbox tunnels up`"
        )
    fixes["checks"] = "fedkeeper does not write these: correct each item above on its cluster"
    return fixes


THROWAWAY_NOTE = (
    "(this sandbox was started for this command and is gone; `fedkeeper sandbox up -c {path}` "
    "keeps one running between commands)"
)


def _print_header(args: argparse.Namespace, text: str, note: str | None = None) -> None:
    if getattr(args, "json", False):
        return
    print(text, flush=True)
    if note:
        print(note, flush=True)


# --- commands -------------------------------------------------------------------------------


def _write_file(path: Path, text: str, replace: bool) -> None:
    """Write ``text`` to ``path`` (an existing file only when ``replace``); UsageError says
    what stops it and the fix."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"folder {parent} does not exist; `mkdir -p {parent}` first")
    try:
        with open(path, "w" if replace else "x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot be written ({exc.strerror}); choose another path"
        ) from None


def cmd_init(args: argparse.Namespace) -> int:
    from fedkeeper.config import example_text

    path = Path(args.path)
    if path.exists():
        raise UsageError(
            f"{path} already exists; fedkeeper init never overwrites: edit it, or give "
            "another path (`fedkeeper init PATH`)"
        )
    _write_file(path, example_text(), replace=False)
    print(f"wrote {path}: the example federation, every key commented.")
    print(f"next: edit it for your VPC, VPN and clusters, then `fedkeeper validate -c {path}`")
    return EXIT_OK


def _cluster_summary(cluster: EksCluster | OnPremCluster) -> dict[str, Any]:
    if isinstance(cluster, EksCluster):
        return {
            "name": cluster.name,
            "kind": "eks",
            "cluster_name": cluster.cluster_name,
            "kubernetes_version": cluster.kubernetes_version,
            "vpc": str(cluster.network.cidr),
            "az_count": cluster.network.az_count,
            "vgw_asn": cluster.network.vgw_asn,
        }
    return {
        "name": cluster.name,
        "kind": "onprem",
        "cluster_name": cluster.cluster_name,
        "api_endpoint": cluster.api_endpoint,
        "host_cidrs": [str(c) for c in cluster.host_cidrs],
        "pod_cidrs": [str(c) for c in cluster.pod_cidrs],
        "service_cidrs": [str(c) for c in cluster.service_cidrs],
        "customer_gateway": str(cluster.customer_gateway.ip),
        "customer_gateway_asn": cluster.customer_gateway.bgp_asn,
    }


def _summary(cfg: FederationConfig) -> dict[str, Any]:
    return {
        "federation": cfg.name,
        "mode": cfg.mode.value,
        "region": cfg.aws.region,
        "clusters": [_cluster_summary(c) for c in cfg.clusters],
        "vpns": [
            {"site": v.site, "to": v.eks, "ike_versions": list(v.ike_versions)} for v in cfg.vpns()
        ],
        "peerings": [list(p) for p in cfg.peerings()],
        "site_routes": [list(p) for p in cfg.links.site_routes],
        "pairs": [list(p) for p in cfg.pairs()],
        "departed": list(cfg.departed),
        "disabled_pools": cfg.federation.disabled_pool_policy.value,
        "schedule": cfg.reconcile.schedule,
    }


def _summary_lines(cfg: FederationConfig) -> list[str]:
    """validate's summary: each cluster, the links, and the pairs (each holds two RCCs)."""
    eks, sites = cfg.eks_clusters(), cfg.sites()
    lines = [
        f"federation {cfg.name} · mode {cfg.mode.value} · region {cfg.aws.region}",
        f"clusters: {len(cfg.clusters)} ({len(eks)} EKS, {len(sites)} on-prem)",
    ]
    for c in eks:
        lines.append(
            f"  {c.name}: EKS {c.cluster_name} ({c.kubernetes_version}) · VPC "
            f"{c.network.cidr} over {c.network.az_count} AZs · VGW ASN {c.network.vgw_asn}"
        )
    for s in sites:
        lines.append(
            f"  {s.name}: on-prem {s.cluster_name} at {s.api_endpoint} · hosts "
            f"{', '.join(map(str, s.host_cidrs))} · pods {', '.join(map(str, s.pod_cidrs))} · "
            f"services {', '.join(map(str, s.service_cidrs))} · CGW {s.customer_gateway.ip} "
            f"ASN {s.customer_gateway.bgp_asn}"
        )
    vpns = [f"{v.site} → {v.eks} ({', '.join(v.ike_versions)})" for v in cfg.vpns()]
    lines.append(f"links: VPNs {'; '.join(vpns) or 'none'}")
    if cfg.peerings() or cfg.links.site_routes:
        peerings = ", ".join(f"{a} ↔ {b}" for a, b in cfg.peerings()) or "none"
        routes = ", ".join(f"{a} ↔ {b}" for a, b in cfg.links.site_routes) or "none"
        lines.append(f"  VPC peerings {peerings} · site routes {routes}")
    unordered = [(a, b) for a, b in cfg.pairs() if a < b]
    lines.append(
        f"pairs: {len(unordered)} ({'full mesh' if cfg.topology.full_mesh else 'chosen'}), "
        f"each an RCC on both sides named after the cluster it points at: "
        + ", ".join(f"{a} ↔ {b}" for a, b in unordered)
    )
    if cfg.departed:
        lines.append(f"departed: {', '.join(cfg.departed)}")
    lines.append(
        f"disabled pools {cfg.federation.disabled_pool_policy.value} · schedule "
        f"{cfg.reconcile.schedule}"
    )
    try:
        cfg.require_two_clusters()
    except ConfigError:
        lines.append(
            "engine: not wired for this many clusters yet (plan, apply, status, demo and the "
            "Lambdas refuse this file; validate and config migrate read it)"
        )
    return lines


def cmd_validate(args: argparse.Namespace) -> int:
    if args.path and args.config and args.path != args.config:
        raise UsageError("give the config once: either `validate PATH` or `validate -c PATH`")
    args.config = args.config or args.path
    path = _config_path(args)
    try:
        loaded = _load(args, engine=False)
    except ConfigError as exc:
        if not args.json:
            raise
        print(json.dumps({"config": path, "valid": False, "errors": exc.errors}, indent=2))
        return EXIT_USAGE
    cfg = loaded.config
    if args.json:
        print(json.dumps({"config": path, "valid": True, "summary": _summary(cfg)}, indent=2))
        return EXIT_OK
    print(header("validate", loaded, "not checked (validate reads no AWS)", cfg.aws.region))
    print(f"{path}: valid")
    data, _ = read_config_file(path)
    for warning in config_warnings(cfg, datetime.now(UTC).date(), data):
        print(f"  warning: {warning}")
    for line in _summary_lines(cfg):
        print(f"  {line}")
    return EXIT_OK


def cmd_config_migrate(args: argparse.Namespace) -> int:
    path = _config_path(args)
    if not Path(path).exists():
        raise UsageError(f"{path}: no such file; pass the path of the federation.yaml to migrate")
    data, _ = read_config_file(path)
    text = migrate(data, path)  # ConfigError names the file's own fields; checks its output
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(
            f"{out} already exists; give another path with -o, or add --force to replace it"
        )
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give the path of a file with -o")
    _write_file(out, text, replace=args.force)
    print(f"wrote {out}: {path} in the clusters: form, every name kept")
    print(f"next: `fedkeeper validate -c {out}`, then use it in place of {path}")
    return EXIT_OK


def _phase_reporter(progress: Progress) -> Callable[[str], None]:
    return lambda invariant: progress.show(f"reconciling {invariant}…")


def cmd_reconcile(args: argparse.Namespace) -> int:
    loaded = _load(args)
    scope = _scope(args)
    choice = choose_mode(args.command, loaded)

    def run(conns: Any, progress: Progress) -> Report:
        from fedkeeper.service import reconcile

        progress.show("reconciling…")
        started = conns.clock()
        report = reconcile(
            conns,
            scope,
            choice.mode,
            on_phase=_phase_reporter(progress),
            deadline_s=args.deadline,
        )
        if choice.mode == "apply" and _rolling_out(report):
            left = args.deadline - (conns.clock() - started)
            report = _after_rollouts(conns, report, left, progress)
        return report

    return _run_report(args, loaded, args.command, kill_switch_line(args.command, choice), run)


# A hand repair waits for the add-on update it started, as `aws eks wait addon-active` does
# (it polls every 10 s), so the operator sees the outcome: aws-node checked against it. The
# Lambdas do not wait: the next trigger checks. Kept back for the check after the wait:
ADDON_POLL_S = 5.0
ADDON_RECHECK_S = 30.0
_ADDON_ROLLING = frozenset({"CREATING", "UPDATING"})


def _rolling_out(report: Report) -> list[str]:
    """Targets (``aws/Addon/<cluster>/<name>``) of add-on updates this run applied whose
    rollout it deferred to the next trigger."""
    from fedkeeper.model import Result

    applied = {
        c.change.target
        for c in report.changes
        if c.result is Result.APPLIED and c.change.kind == "Addon"
    }
    return [d.target for d in report.deferred if d.target in applied]


def _after_rollouts(conns: Any, report: Report, left_s: float, progress: Progress) -> Report:
    """Wait (within ``left_s``) for the add-on updates ``report`` applied to roll out, then
    check their invariant again: the report of both runs, as one."""
    from fedkeeper.model import Invariant
    from fedkeeper.service import reconcile

    targets = _rolling_out(report)
    started = conns.clock()
    waited_out = True
    for target in targets:
        cluster, name = target.split("/")[2:4]
        while True:
            spent = conns.clock() - started
            try:
                addon = conns.aws.describe_addon(cluster, name)
            except FedkeeperError:
                waited_out = False
                break
            if addon is None or addon.status not in _ADDON_ROLLING:
                break
            if spent + ADDON_POLL_S + ADDON_RECHECK_S > left_s:
                waited_out = False
                break
            progress.show(
                f"waiting for the {name} add-on to roll out ({addon.status}, {spent:.0f} s)…"
            )
            time.sleep(ADDON_POLL_S)
    if not waited_out:
        return report
    before = conns.counter.snapshot()
    again = reconcile(
        conns,
        Scope.of(Invariant.SNAT),
        report.mode,
        on_phase=_phase_reporter(progress),
        deadline_s=max(left_s - (conns.clock() - started), 1.0),
    )
    merged = Report(
        mode=report.mode,
        scope=report.scope,
        changes=[*report.changes, *again.changes],
        findings=[*report.findings, *(f for f in again.findings if f not in report.findings)],
        deferred=[*(d for d in report.deferred if d.target not in targets), *again.deferred],
        errors=[*report.errors, *again.errors],
        failed_targets=[*report.failed_targets, *again.failed_targets],
        duration_ms=report.duration_ms + again.duration_ms,
        trigger=report.trigger,
        tunnels_up=report.tunnels_up,
        reached=report.reached | again.reached,
    )
    merged.api = report.api.plus(conns.counter.since(before))
    return merged


def cmd_adopt(args: argparse.Namespace) -> int:
    """``fedkeeper adopt [--apply] [--only TARGET]``: see :mod:`fedkeeper.adopt`."""
    loaded = _load(args)
    requested: ModeName = "apply" if args.apply else "plan"
    choice = choose_mode(requested, loaded)

    def run(conns: Any, progress: Progress) -> Report:
        from fedkeeper.adopt import adopt

        progress.show("looking for hand-made objects…")
        if args.only:
            # Every --only must name a listed object, or nothing is taken over at all.
            listed = adopt(conns, "plan", deadline_s=args.deadline)
            _check_only(args.only, [c.change.target for c in listed.changes])
        return adopt(conns, choice.mode, only=args.only, deadline_s=args.deadline)

    return _run_report(args, loaded, "adopt", kill_switch_line(requested, choice), run)


def _check_only(only: Sequence[str], targets: Sequence[str]) -> None:
    unknown = [t for t in only if t not in targets]
    if not unknown:
        return
    first = unknown[0]
    listed = ", ".join(targets) if targets else "nothing (no hand-made object to take over)"
    raise UsageError(
        f"--only {shown(first)} names no object `fedkeeper adopt` lists"
        f"{did_you_mean(first, targets)}; it lists: {listed}. Nothing was adopted"
    )


def _run_report(
    args: argparse.Namespace,
    loaded: Loaded,
    command: str,
    note: str | None,
    run: Callable[[Any, Progress], Report],
) -> int:
    """Run ``run`` on the sandbox or the real targets, print its Report, exit by it."""
    _prepare_target(args, loaded)
    _scenario(args)
    progress = Progress()
    if args.sandbox:
        target = _sandbox_target(args, loaded)
        region = loaded.config.aws.region
        _print_header(args, header(command, loaded, "sandbox", region, target.note()), note)
        with _sandbox_connections(target, loaded, progress) as conns:
            report = run(conns, progress)
    else:
        session, account = aws_session(args, loaded.config)
        _print_header(args, header(command, loaded, account, session.region_name), note)
        report = run(_connections(args, loaded, session), progress)
    progress.clear()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_report(report, colour=colour_wanted()))
    return _report_code(report)


def _report_code(report: Report | dict[str, Any]) -> int:
    d = report.to_dict() if isinstance(report, Report) else report
    return EXIT_OK if d.get("converged") and not d.get("errors") else EXIT_DRIFT


def cmd_status(args: argparse.Namespace) -> int:
    loaded = _load(args)
    env_mode()
    _prepare_target(args, loaded)
    _scenario(args)
    progress = Progress()
    from fedkeeper.status import federation_status

    target: SandboxTarget | None = None
    if args.sandbox:
        target = _sandbox_target(args, loaded)
        region = loaded.config.aws.region
        _print_header(args, header("status", loaded, "sandbox", region, target.note()))
        with _sandbox_connections(target, loaded, progress) as conns:
            progress.show("reading every invariant…")
            status = federation_status(conns, deadline_s=args.deadline)
    else:
        session, account = aws_session(args, loaded.config)
        _print_header(args, header("status", loaded, account, session.region_name))
        progress.show("reading every invariant…")
        status = federation_status(_connections(args, loaded, session), deadline_s=args.deadline)
    progress.clear()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return EXIT_OK if status.healthy else EXIT_DRIFT
    fixes = fix_commands(
        loaded,
        sandbox=args.sandbox,
        scenario=args.scenario,
        running=target is not None and target.running,
    )
    print(render_status(status.to_dict(), colour=colour_wanted(), fixes=fixes))
    if target is not None and not target.running:
        print(THROWAWAY_NOTE.format(path=loaded.path))
    return EXIT_OK if status.healthy else EXIT_DRIFT


def cmd_invoke(args: argparse.Namespace) -> int:
    loaded = _load(args)
    cfg = loaded.config
    env_mode()
    _check_target_args(args, loaded)
    payload: dict[str, Any] = {"action": args.action}
    if args.scope is not None:
        payload["scope"] = [i.value for i in _scope(args).ordered()]
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

    target = f" · function {function}:{args.qualifier}"
    running = False
    try:
        if args.sandbox:
            world = _sandbox_target(args, loaded)
            running = world.running
            note = target + world.note()
            _print_header(args, header("invoke", loaded, "sandbox", cfg.aws.region, note))
            if world.running:
                with world.world.clock().signing_time():
                    body, error = call(world.world.session())
            else:
                from fedkeeper.sandbox.world import Sandbox

                with Sandbox.start(cfg) as sb:
                    body, error = call(sb.aws_session())
        else:
            session, account = aws_session(args, cfg)
            _print_header(args, header("invoke", loaded, account, session.region_name, target))
            body, error = call(session)
    except FedkeeperError as exc:
        raise Failure(f"could not invoke {function}: {exc}") from None
    if (
        not args.json
        and args.action == "apply"
        and isinstance(body, dict)
        and body.get("mode") == "plan"
    ):
        print(
            "KILL SWITCH ON in the deployed function (mode: plan in its config or "
            "FEDKEEPER_MODE=plan): it planned only, nothing was written"
        )
    if args.json or not isinstance(body, dict) or "mode" not in body:
        print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
    elif args.action == "status":
        from fedkeeper.status import status_from_report

        view = status_from_report(body)
        fixes = fix_commands(loaded, sandbox=args.sandbox, running=running)
        print(render_status(view, colour=colour_wanted(), fixes=fixes))
    else:
        print(render_report(body, colour=colour_wanted()))
    if error:
        raise Failure(f"{function} failed ({error}); see its CloudWatch logs")
    if isinstance(body, dict) and "error" in body:
        return EXIT_USAGE
    if not isinstance(body, dict):
        return EXIT_DRIFT
    return _report_code(body)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from fedkeeper import bootstrap

    loaded = _load(args)
    cfg = loaded.config
    where = f" · on-prem {cfg.sole_site().cluster_name}"
    if not args.apply:
        if args.dry_run:
            raise UsageError("--dry-run goes with --apply (it shows what --apply would change)")
        print("# " + header("onprem-bootstrap", loaded, "not used", cfg.aws.region, where))
        print("# fedkeeper's identity on the on-prem cluster. Apply with:")
        print("#   fedkeeper onprem-bootstrap | kubectl --context <on-prem> apply -f -")
        print("# or let fedkeeper reconcile it and write the kubeconfig:")
        print(f"#   fedkeeper onprem-bootstrap -c {loaded.path} --apply --context <on-prem>")
        print("# then store that kubeconfig where the Lambdas read it:")
        print(f"#   {bootstrap.store_command(cfg, args.write_kubeconfig)}")
        print(bootstrap.manifests_yaml(cfg), end="")
        return EXIT_OK
    if not args.context:
        raise UsageError("--apply needs --context: name the on-prem kubeconfig context")
    kubeconfig = load_kubeconfig(args.kubeconfig, args.context)
    if not args.dry_run:
        _check_output_path(args.write_kubeconfig, "--write-kubeconfig")
    from fedkeeper.adapters.kube import KubeCluster, resource_types

    print(header("onprem-bootstrap", loaded, "not used", cfg.aws.region, where), flush=True)
    api = cfg.federation.calico_api
    try:
        cluster = KubeCluster.from_kubeconfig(
            "onprem", kubeconfig, resource_types(api.group, api.version), context=args.context
        )
        diffs = bootstrap.plan_bootstrap(cluster, cfg)
        for line in bootstrap.render_plan(diffs):
            print(line)
        if args.dry_run:
            changes = sum(1 for d in diffs if d.action != "unchanged")
            print(f"dry run: {changes} object(s) would change; nothing was written")
            return EXIT_DRIFT if changes else EXIT_OK
        for line in bootstrap.apply_plan(cluster, diffs):
            print(line)
        out = bootstrap.fedkeeper_kubeconfig(cluster, cfg)
    except UnreachableError as exc:
        raise Failure(
            f"bootstrap failed, the API server is unreachable ({exc}); check the context with "
            f"`kubectl --context {args.context} get namespaces`"
        ) from None
    except FedkeeperError as exc:
        raise Failure(
            f"bootstrap failed: {exc}; the context's user needs to create Namespaces, RBAC and "
            "Secrets (use a cluster-admin context)"
        ) from None
    import yaml

    fd = os.open(args.write_kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(out, fh, sort_keys=False)
    print(f"wrote {args.write_kubeconfig} (token auth for ServiceAccount fedkeeper/fedkeeper)")
    print("store it where the Lambdas read it:")
    print(f"  {bootstrap.store_command(cfg, args.write_kubeconfig)}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    loaded = _load(args)
    env_mode()
    from fedkeeper.sandbox.demo import DemoInputError, run_demo, run_event_demo

    first = header("demo", loaded, "sandbox", loaded.config.aws.region)
    try:
        if args.event:
            if args.scenario and len(args.scenario) > 1:
                raise UsageError("--event takes one --scenario at most; give one --scenario")
            scenario = args.scenario[0] if args.scenario else None
            return run_event_demo(
                loaded.config, args.event, scenario=scenario, as_json=args.json, header=first
            )
        return run_demo(
            loaded.config,
            scenarios=args.scenario,
            as_json=args.json,
            list_only=args.list,
            header=first,
        )
    except DemoInputError as exc:
        raise UsageError(str(exc)) from None


def _sandbox_module() -> Any:
    from fedkeeper.sandbox import persistent

    return persistent


def _sandbox_first_line(command: str, state: Any) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(state.started))
    return (
        f"fedkeeper sandbox {command} · config {state.config_path} · federation "
        f"{state.federation} · account sandbox · region {state.region} · running sandbox "
        f"(pid {state.pid}, up since {since})"
    )


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    """Start the persistent sandbox (see :mod:`fedkeeper.sandbox.persistent`)."""
    persistent = _sandbox_module()
    loaded = _load(args)
    env_mode()
    try:
        port = persistent.base_port(args.port)
    except persistent.SandboxStateError as exc:
        raise UsageError(str(exc)) from None
    print(header("sandbox up", loaded, "sandbox", loaded.config.aws.region), flush=True)
    progress = Progress()
    progress.show("starting the sandbox: emulated AWS, the EKS and on-prem API servers…")
    try:
        started = persistent.start_world(loaded.path, loaded.config, port)
    except persistent.PortInUseError as exc:
        raise UsageError(str(exc)) from None
    except persistent.SandboxStateError as exc:
        raise Failure(str(exc)) from None
    except KeyboardInterrupt:
        progress.clear()
        _error("interrupted: the sandbox being started was stopped; nothing is left running")
        return EXIT_INTERRUPTED
    finally:
        progress.clear()
    if started.replaced is not None:
        print(f"{persistent.describe(started.replaced)}; started a new one")
    state = started.state
    print(f"sandbox running (pid {state.pid}) until `fedkeeper sandbox down`")
    rows = [
        ["AWS", state.aws_url, "boto3 or the AWS CLI with --endpoint-url"],
        ["EKS API", state.eks_url, "kubectl --kubeconfig KUBECONFIG --context sandbox-eks"],
        ["on-prem API", state.onprem_url, "kubectl ... --context sandbox-onprem"],
        ["kubeconfig", state.kubeconfig, "both clusters, as cluster admin"],
        ["log", state.log, ""],
    ]
    from fedkeeper.render import table

    print(table(["", "where", "use"], rows, indent="  "))
    print(
        f"next: `fedkeeper status -c {loaded.path} --sandbox`; break it with "
        "`fedkeeper sandbox break SCENARIO` (`fedkeeper demo --list` names them)"
    )
    return EXIT_OK


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    persistent = _sandbox_module()
    try:
        print(persistent.stop_world())
    except persistent.SandboxStateError as exc:
        raise Failure(str(exc)) from None
    return EXIT_OK


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    persistent = _sandbox_module()
    try:
        found = persistent.find_world()
    except persistent.SandboxStateError as exc:
        raise Failure(str(exc)) from None
    state = found.state
    if args.json:
        out: dict[str, Any] = {"condition": found.condition, "home": str(persistent.sandbox_home())}
        if state is not None:
            out |= {
                "pid": state.pid,
                "started": datetime.fromtimestamp(state.started, UTC).isoformat(),
                "config": state.config_path,
                "federation": state.federation,
                "region": state.region,
                "endpoints": {
                    "aws": state.aws_url,
                    "eks": state.eks_url,
                    "onprem": state.onprem_url,
                },
                "kubeconfig": state.kubeconfig,
                "log": state.log,
                **({"detail": found.detail} if found.detail else {}),
            }
        print(json.dumps(out, indent=2))
        return EXIT_OK if found.condition == "running" else EXIT_DRIFT
    print(f"fedkeeper sandbox status · state in {persistent.sandbox_home()}")
    print(persistent.describe(found))
    if state is not None and found.condition == "running":
        up = found.health.get("tunnels_up", 0)
        print(f"  AWS {state.aws_url} · EKS {state.eks_url} · on-prem {state.onprem_url}")
        print(f"  VPN tunnels up: {up} of 2 · kubeconfig {state.kubeconfig} · log {state.log}")
    elif state is None:
        print("start one with `fedkeeper sandbox up -c PATH`")
        return EXIT_DRIFT
    else:
        print("`fedkeeper sandbox down` cleans up; `fedkeeper sandbox up -c PATH` starts anew")
        return EXIT_DRIFT
    return EXIT_OK


def _running_world() -> Any:
    persistent = _sandbox_module()
    try:
        return persistent.RunningWorld(persistent.require_running())
    except persistent.SandboxStateError as exc:
        raise UsageError(str(exc)) from None


def cmd_sandbox_break(args: argparse.Namespace) -> int:
    persistent = _sandbox_module()
    scenario = _scenario_named(args.scenario, "sandbox break")
    world = _running_world()
    print(_sandbox_first_line("break", world.state), flush=True)
    try:
        done = world.inject(scenario.name)
    except (OSError, persistent.SandboxStateError) as exc:
        raise Failure(f"the sandbox could not be broken: {exc}") from None
    print(f"broke the running sandbox: {scenario.name}: {done}")
    print(f"see it: `fedkeeper status -c {world.state.config_path} --sandbox`")
    return EXIT_OK


def cmd_sandbox_tunnels(args: argparse.Namespace) -> int:
    persistent = _sandbox_module()
    world = _running_world()
    print(_sandbox_first_line("tunnels", world.state), flush=True)
    try:
        done = world.set_tunnels(up=args.state == "up")
    except (OSError, persistent.SandboxStateError) as exc:
        raise Failure(f"the sandbox's tunnels could not be set: {exc}") from None
    print(f"the on-prem router has {done}")
    return EXIT_OK


# --- the parser -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line naming --help (and exit 2 via main)."""

    argv: list[str] | None = None  # what main() parses (for the hint on a stray config path)

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("fedkeeper").strip()
        hint = _stray_config_hint(message, _Parser.argv or [])
        raise UsageError(
            f"{where + ': ' if where else ''}{message}; " + (hint or f"see `{self.prog} --help`")
        )


def _stray_config_hint(message: str, argv: Sequence[str]) -> str:
    """For ``fedkeeper status federation.yaml``: the config goes after -c."""
    if not message.startswith("unrecognized arguments:"):
        return ""
    stray = message.split(":", 1)[1].split()
    for arg in stray:
        if arg.endswith((".yaml", ".yml")) or (Path(arg).is_file() and not arg.startswith("-")):
            fixed = [("-c " + a if a == arg else a) for a in argv]
            return f"a config file is named with -c: `fedkeeper {' '.join(fixed)}`"
    return ""


def _command(
    sub: Any, name: str, help_: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", "-c", help=f"federation config (default: ./{DEFAULT_CONFIG}; no fallback)"
    )


def _aws_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="AWS profile (default: the environment's)")
    p.add_argument("--region", help="AWS region (default: the config's)")


def _deadline(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_DEADLINE_S <= value <= MAX_DEADLINE_S:
        raise UsageError(
            f"--deadline {text!r} is not a usable time budget; give seconds between "
            f"{MIN_DEADLINE_S:g} and {MAX_DEADLINE_S:g}, e.g. --deadline {DEFAULT_DEADLINE_S:g}"
        )
    return value


def _target_args(r: argparse.ArgumentParser) -> None:
    _config_arg(r)
    r.add_argument("--sandbox", action="store_true", help="run against the embedded sandbox")
    _aws_args(r)
    r.add_argument("--vpc-id", help="VPC id (default: discovered by the federation tag)")
    r.add_argument("--kubeconfig", help="kubeconfig file for --eks-context/--onprem-context")
    r.add_argument("--eks-context", help="reach EKS through this kubeconfig context")
    r.add_argument(
        "--onprem-context",
        help="reach on-prem through this kubeconfig context (default: the secret)",
    )
    r.add_argument(
        "--scenario",
        help="with --sandbox: apply this demo scenario's fault first, to see how it shows",
    )
    r.add_argument("--json", action="store_true", help="print JSON (no header)")
    r.add_argument(
        "--deadline",
        type=_deadline,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help="time budget of the run: work that cannot finish in it is reported as deferred "
        f"(default: {DEFAULT_DEADLINE_S:g})",
    )


def _add_init(sub: Any) -> None:
    p = _command(
        sub, "init", "write a commented federation.yaml to edit (never overwrites)", cmd_init
    )
    p.add_argument("path", nargs="?", default=DEFAULT_CONFIG, help="where (default: %(default)s)")


def _add_validate(sub: Any) -> None:
    p = _command(sub, "validate", "check federation.yaml and summarise it", cmd_validate)
    p.add_argument("path", nargs="?", help=f"config path (default: ./{DEFAULT_CONFIG})")
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="print the result (or errors) as JSON")


def _add_config(sub: Any) -> None:
    help_ = "work on federation.yaml itself"
    p = sub.add_parser(
        "config",
        help=help_,
        description=help_,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    m = _command(
        actions,
        "migrate",
        "write a two-cluster federation.yaml (aws/eks/onprem) in the clusters: form, every "
        "name kept; prints it, or writes it with -o",
        cmd_config_migrate,
    )
    _config_arg(m)
    m.add_argument("--output", "-o", help="write the new file here instead of printing it")
    m.add_argument("--force", action="store_true", help="with -o: replace an existing file")


def _add_plan_apply(sub: Any) -> None:
    for name, help_ in (
        ("plan", "show what would be repaired; writes nothing"),
        ("apply", "repair drift now"),
    ):
        r = _command(sub, name, help_, cmd_reconcile)
        _target_args(r)
        r.add_argument(
            "--scope", action="append", help=f"invariants to reconcile ({_SCOPES}); default all"
        )


def _add_status(sub: Any) -> None:
    p = _command(
        sub, "status", "the federation's health, with reasons (writes nothing)", cmd_status
    )
    _target_args(p)


def _add_adopt(sub: Any) -> None:
    p = _command(
        sub,
        "adopt",
        "list hand-made objects doing fedkeeper's job; --apply labels them as owned "
        "(names and specs kept)",
        cmd_adopt,
    )
    _target_args(p)
    p.add_argument("--apply", action="store_true", help="take them over (default: list only)")
    p.add_argument("--only", action="append", metavar="TARGET", help="adopt only this target")


def _add_invoke(sub: Any) -> None:
    p = _command(sub, "invoke", "invoke the deployed repair Lambda; print its answer", cmd_invoke)
    p.add_argument("action", choices=["plan", "apply", "status"])
    _config_arg(p)
    p.add_argument("--scope", action="append", help=f"invariants ({_SCOPES})")
    p.add_argument("--function", help="function name (default: <name>-repair)")
    p.add_argument("--qualifier", default="live", help="alias or version (default: live)")
    _aws_args(p)
    p.add_argument("--json", action="store_true", help="print the raw response")
    p.add_argument("--sandbox", action="store_true", help="invoke the sandbox's deployment")


def _add_bootstrap(sub: Any) -> None:
    p = _command(
        sub,
        "onprem-bootstrap",
        "the on-prem ServiceAccount and RBAC fedkeeper needs, and how to store its kubeconfig",
        cmd_bootstrap,
    )
    _config_arg(p)
    p.add_argument(
        "--apply",
        action="store_true",
        help="reconcile them through --context: create or update each to the desired state",
    )
    p.add_argument("--dry-run", action="store_true", help="with --apply: show the diff only")
    p.add_argument("--context", help="kubeconfig context of the on-prem cluster (with --apply)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument(
        "--write-kubeconfig",
        default="onprem-kubeconfig.yaml",
        help="with --apply: where to write fedkeeper's kubeconfig (mode 0600)",
    )


def _add_preflight(sub: Any) -> None:
    p = _command(
        sub,
        "preflight",
        "before cdk deploy: would it succeed in this account and region? (read-only)",
        cmd_preflight,
    )
    _config_arg(p)
    p.add_argument("--sandbox", action="store_true", help="check a fresh sandbox account")
    _aws_args(p)
    p.add_argument("--json", action="store_true", help="print JSON (no header)")


def cmd_preflight(args: argparse.Namespace) -> int:
    """Checks in fedkeeper/preflight.py; exit 0 ready, 1 something would fail."""
    from datetime import date

    from fedkeeper.preflight import render_preflight, run_preflight

    loaded = _load(args)
    if args.sandbox:
        from fedkeeper.sandbox.preflight_aws import preflight_sandbox

        _print_header(args, header("preflight", loaded, "sandbox", loaded.config.aws.region))
        with preflight_sandbox(loaded.config) as (session, account):
            result = run_preflight(session, loaded.config, account, date.today())
    else:
        session, account = aws_session(args, loaded.config)
        _print_header(args, header("preflight", loaded, account, session.region_name))
        result = run_preflight(session, loaded.config, account, date.today())
    print(json.dumps(result.to_dict(), indent=2) if args.json else render_preflight(result))
    return EXIT_OK if result.ready else EXIT_DRIFT


def _add_demo(sub: Any) -> None:
    p = _command(sub, "demo", "run the whole system on the embedded sandbox", cmd_demo)
    _config_arg(p)
    p.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument(
        "--event",
        metavar="FILE",
        help="deliver this EventBridge event (JSON) through the deployed rules and print the "
        "handler's Report; with --scenario, that scenario's fault is applied first",
    )


def _add_sandbox(sub: Any) -> None:
    help_ = (
        "a sandbox kept running between commands, until `sandbox down` (like kind or "
        "LocalStack): commands with --sandbox use it"
    )
    p = sub.add_parser(
        "sandbox",
        help=help_,
        description=help_ + ". Ports: --port N or FEDKEEPER_SANDBOX_PORT (AWS on N, EKS on "
        f"N+1, on-prem on N+2; default {_SANDBOX_PORT}); state: FEDKEEPER_SANDBOX_HOME "
        "(default ~/.local/state/fedkeeper/sandbox).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="sandbox_command", required=True, parser_class=_Parser)
    up = _command(
        actions, "up", "start the sandbox from a config and keep it running", cmd_sandbox_up
    )
    _config_arg(up)
    up.add_argument(
        "--port",
        type=int,
        help="AWS endpoint port; EKS and on-prem take the next two (default: "
        f"$FEDKEEPER_SANDBOX_PORT or {_SANDBOX_PORT}; 0: any free ports)",
    )
    _command(actions, "down", "stop the sandbox; nothing is left running", cmd_sandbox_down)
    status = _command(
        actions, "status", "is a sandbox running, where, since when", cmd_sandbox_status
    )
    status.add_argument("--json", action="store_true", help="print it as JSON")
    brk = _command(
        actions, "break", "apply a demo scenario's drift to the running sandbox", cmd_sandbox_break
    )
    brk.add_argument("scenario", help="a scenario name (`fedkeeper demo --list`)")
    tunnels = _command(
        actions,
        "tunnels",
        "take both VPN tunnels up or down, as the on-prem router would",
        cmd_sandbox_tunnels,
    )
    tunnels.add_argument("state", choices=["up", "down"])


COMMANDS: list[Callable[[Any], None]] = [
    _add_init,
    _add_validate,
    _add_config,
    _add_plan_apply,
    _add_status,
    _add_adopt,
    _add_invoke,
    _add_bootstrap,
    _add_preflight,
    _add_demo,
    _add_sandbox,
]


def package_version() -> str:
    try:
        return version("fedkeeper")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fedkeeper",
        description="Keep a Calico Enterprise federation between EKS and on-prem consistent. "
        "Start with `fedkeeper init` (writes federation.yaml to edit), or try it with no AWS "
        "account: `fedkeeper demo -c federation.example.yaml`.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fedkeeper {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return p


# --- the one place mistakes become messages -------------------------------------------------


def _config_error(exc: ConfigError, args: argparse.Namespace | None) -> None:
    path = getattr(args, "config", None) or DEFAULT_CONFIG
    if len(exc.errors) == 1:
        error = exc.errors[0]
        _error(error if error.startswith(str(path)) else f"{path}: {error}")
        return
    _error(f"{path}: {len(exc.errors)} errors")
    for e in exc.errors:
        print(f"  - {e}", file=sys.stderr)


def install_command(extra: str | None, direct_url: dict[str, Any] | None, cwd: Path) -> str:
    """The pip command that installs fedkeeper (with ``extra``) the way it was installed.

    ``direct_url``: the distribution's PEP 610 ``direct_url.json``: a checkout (``file://``
    URL, editable or not), or None for an install from an index.
    """
    spec = f"[{extra}]" if extra else ""
    url = str((direct_url or {}).get("url", ""))
    if not url.startswith("file://"):
        return f"pip install 'fedkeeper{spec}'"
    source = Path(url.removeprefix("file://"))
    where = "." if source == cwd else str(source)
    editable = bool((direct_url or {}).get("dir_info", {}).get("editable"))
    return f"pip install {'-e ' if editable else ''}'{where}{spec}'"


def _direct_url() -> dict[str, Any] | None:
    """Where the installed fedkeeper came from (a build's egg-info in a checkout has no
    direct_url.json: the installed distribution does)."""
    from importlib.metadata import distributions

    for dist in distributions(name="fedkeeper"):
        text = dist.read_text("direct_url.json")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def _uses_sandbox(args: argparse.Namespace | None) -> bool:
    return args is not None and (
        bool(getattr(args, "sandbox", False)) or args.command in ("demo", "sandbox")
    )


def _missing_module(exc: ModuleNotFoundError, args: argparse.Namespace | None) -> None:
    name = (exc.name or "").split(".")[0]
    if name == "lambdas":  # its own message says how to make the handlers importable
        _error(str(exc))
        return
    cwd = Path.cwd().resolve()
    if name in SANDBOX_MODULES or (_uses_sandbox(args) and name not in CORE_MODULES):
        hint = install_command("sandbox", _direct_url(), cwd)
        _error(
            f"the sandbox is not installed (no module {name!r}); install fedkeeper with its "
            f"sandbox extra: `{hint}`"
        )
        return
    requirement = CORE_MODULES.get(name, name)
    _error(
        f"fedkeeper is incompletely installed (no module {name!r}, from {requirement}); "
        f"reinstall it: `{install_command(None, _direct_url(), cwd)}`"
    )


def _stdout_gone() -> None:
    """The reader went away (``| head``): stop quietly, and keep Python from complaining."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    _Parser.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        sys.stdout.flush()
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ConfigError as exc:  # any command, one answer: each error with its field and fix
        _config_error(exc, args)
        return EXIT_USAGE
    except Failure as exc:
        _error(str(exc))
        return EXIT_DRIFT
    except ModuleNotFoundError as exc:
        _missing_module(exc, args)
        return EXIT_USAGE
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_DRIFT
    except KeyboardInterrupt:
        _error("interrupted; rerun the command: each run starts from what it observes")
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
