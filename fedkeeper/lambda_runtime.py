"""What the Lambda handlers share: settings, the per-container runtime, and the handler logic.

The handlers in ``lambdas/`` only wire Powertools and call one function here:

* :func:`handle_event` — an EventBridge event → :func:`fedkeeper.events.trigger_for` → a
  scoped ``reconcile`` (or a no-op Report when the event asks nothing of fedkeeper);
* :func:`handle_repair` — the repair function: a scheduled event (full reconcile) or a manual
  payload (:func:`handle_manual`, ``{"action": "plan"|"apply"|"status", "scope": [...]}`` or
  ``{"action": "adopt", "mode": "plan"|"apply"}``).

Every run ends in :func:`finish`: the Report is logged (it holds no secrets; payloads and
bodies are never logged), turned into metrics, and — when part of the run failed in a way
that trying again can fix — raised as :class:`RetryableError`, so that Lambda's async
retries and the dead-letter queue take over. Permanent failures are reported and counted,
not raised: retrying them only repeats the failure.

The environment is read once per container into :class:`Settings`; :func:`runtime` builds
one :class:`Runtime` (settings, config, connections) lazily and keeps it while the container
is warm. Tests and the sandbox inject their own with :func:`use_runtime`; production code is
not special-cased (only the boto3 session and endpoints differ).

Cold start: the handler modules import this module on their first invocation (their cold
import stays light, see :mod:`lambdas`); it imports pydantic, Powertools and the pure layers
only. boto3 (through the AWS adapter) and the kubernetes client (through the Kubernetes
adapter) load when a run first touches AWS or a cluster, so an irrelevant event never pays
for them and a routes-only event never loads the kubernetes client.

Metrics (EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE`` or ``Fedkeeper``, dimension
``service=fedkeeper`` only, so alarms and dashboards need no per-handler dimension):

============================  ===========================================================
``DriftFound``                changes the run found necessary (planned, applied or failed)
``DriftRepaired``             changes applied
``DriftFound.<invariant>``    per invariant (``routes``, ``snat``, ...), only when non-zero
``DriftRepaired.<invariant>`` per invariant, only when non-zero
``Deferred``                  work deferred (on-prem unreachable)
``Failures``                  failed changes + run errors (retryable or not)
``Findings``                  findings reported
``TunnelsUp``                 VPN tunnels up, when the run looked at the VPN
``EventsIgnored``             events a rule delivered that asked nothing of fedkeeper
``InvalidRequests``           manual payloads refused
============================  ===========================================================
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from fedkeeper import episodes
from fedkeeper.config import FederationConfig, load_config
from fedkeeper.errors import ConfigError, FedkeeperError, RetryableError
from fedkeeper.events import Trigger, event_summary, is_eventbridge_event, trigger_for
from fedkeeper.model import Deferred, Report, Result, RunError, Scope, Severity

# In the light fedkeeper.telemetry (what a handler needs at import); re-exported from here.
from fedkeeper.telemetry import SERVICE as SERVICE  # noqa: PLC0414
from fedkeeper.telemetry import RedactingFormatter as RedactingFormatter  # noqa: PLC0414
from fedkeeper.telemetry import metrics_namespace as metrics_namespace  # noqa: PLC0414
from fedkeeper.telemetry import redact

if TYPE_CHECKING:
    import boto3

    from fedkeeper.adapters.aws import AwsAdapter
    from fedkeeper.model import Invariant
    from fedkeeper.service import Connections, ModeName, Runner

# The code asset is /var/task/{fedkeeper,lambdas}/...; the stack puts federation.yaml beside.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "federation.yaml"

# Powertools loggers share one stdlib logger per service name, and Metrics instances share
# one metric set: these add to what the handler's own Logger and Metrics emit and flush.
logger = Logger(service=SERVICE, child=True)
metrics = Metrics(service=SERVICE)
# Metrics, or an EphemeralMetrics that its owner flushes (it shares no metric set).
MetricsSink = Metrics | EphemeralMetrics


# --- settings --------------------------------------------------------------------------------


class Settings(BaseModel):
    """The Lambda environment the automation stack sets, validated once per cold start.

    Every value is optional: without ids the engine discovers the VPC and gateway by the
    federation tag, and the cluster and secret come from federation.yaml. ``mode: plan``
    is the kill switch (it wins over the config and over a manual ``apply``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    config_path: Path = Field(DEFAULT_CONFIG_PATH, alias="FEDKEEPER_CONFIG_PATH")
    mode: Literal["plan", "apply"] | None = Field(None, alias="FEDKEEPER_MODE")
    vpc_id: str | None = Field(None, alias="FEDKEEPER_VPC_ID")
    vgw_id: str | None = Field(None, alias="FEDKEEPER_VGW_ID")
    vpn_connection_id: str | None = Field(None, alias="FEDKEEPER_VPN_CONNECTION_ID")
    cluster_name: str | None = Field(None, alias="FEDKEEPER_CLUSTER_NAME")
    onprem_secret_arn: str | None = Field(None, alias="FEDKEEPER_ONPREM_SECRET_ARN")
    topic_arn: str | None = Field(None, alias="FEDKEEPER_TOPIC_ARN")
    watch_state_parameter: str | None = Field(None, alias="FEDKEEPER_WATCH_STATE_PARAMETER")
    # The DynamoDB table keeping open episodes of persistent trouble (fedkeeper.episodes).
    episodes_table: str | None = Field(None, alias="FEDKEEPER_EPISODES_TABLE")
    alert_window_minutes: float = Field(30.0, alias="FEDKEEPER_ALERT_WINDOW_MINUTES", gt=0)
    alert_after_runs: int = Field(3, alias="FEDKEEPER_ALERT_AFTER_RUNS", ge=1)

    @field_validator("config_path", mode="before")
    @classmethod
    def _default_path(cls, value: Any) -> Any:
        return DEFAULT_CONFIG_PATH if value is None else value

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            if value not in ("plan", "apply"):
                raise ValueError(f"{value!r} is not a mode; set plan or apply, or leave it unset")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # CloudFormation cannot omit a variable conditionally; an empty one means unset.
        # (Defined last: pydantic runs "before" validators last-defined first.)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``FEDKEEPER_*`` variables; ConfigError names each bad one."""
        env = os.environ if environ is None else environ
        data = {k: v for k, v in env.items() if k.startswith("FEDKEEPER_")}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            known = ", ".join(str(f.alias) for f in cls.model_fields.values())
            problems: list[str] = []
            for err in exc.errors(include_url=False):
                name = ".".join(str(p) for p in err["loc"])
                if err["type"] == "extra_forbidden":
                    problems.append(f"{name}: is not a fedkeeper setting; known: {known}")
                else:
                    msg = str(err["msg"]).removeprefix("Value error, ")
                    problems.append(f"{name}: {msg}")
            raise ConfigError(problems) from None


# --- the runtime: one per container ----------------------------------------------------------


class Runtime:
    """Settings, the federation config and the connections of one Lambda container.

    Connections (boto3 session, EKS and on-prem clients) are built on first use and kept
    while the container is warm. ``runners`` replaces the invariants' runners (tests) and
    ``on_report`` sees every Report before it is returned (the sandbox keeps them).
    """

    def __init__(
        self,
        settings: Settings,
        config: FederationConfig,
        *,
        connections: Connections | None = None,
        runners: dict[Invariant, Runner] | None = None,
        on_report: Callable[[Report], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = config
        self.wall_clock = wall_clock  # epoch seconds: when an episode of trouble started
        self.runners = runners
        self.on_report = on_report
        self._connections = connections

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        config = load_config(settings.config_path)
        try:
            config.require_two_clusters()  # the engine for N clusters is not wired yet
        except ConfigError as exc:
            raise ConfigError([f"{settings.config_path}: {e}" for e in exc.errors]) from None
        return cls(settings, config)

    def connections(self) -> Connections:
        if self._connections is None:
            self._connections = build_connections(self.settings, self.config)
        return self._connections


def build_connections(
    settings: Settings,
    config: FederationConfig,
    *,
    session: boto3.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Connections:
    """The production connections: the Lambda role's credentials (``session``: another
    identity's, e.g. the sandbox's reconciler), the stack's ids; a warm container keeps the
    checks' preconditions between runs and re-reads one group per run (Preconditions)."""
    import boto3

    from fedkeeper.service import Connections, Targets

    targets = Targets(
        vpc_id=settings.vpc_id,
        vgw_id=settings.vgw_id,
        cluster_name=settings.cluster_name,
        onprem_secret=settings.onprem_secret_arn,
        vpn_connection_id=settings.vpn_connection_id,
    )
    return Connections(
        config,
        session or boto3.Session(region_name=config.aws.region),
        targets=targets,
        clock=clock,
        rotate_preconditions=True,
    )


class _Slot:
    """The container's runtime; a slot rather than a bare global so tests can swap it."""

    value: Runtime | None = None


_slot = _Slot()


def runtime() -> Runtime:
    """The container's Runtime, built on first use from the environment."""
    if _slot.value is None:
        _slot.value = Runtime.from_settings(Settings.from_env())
    return _slot.value


@contextmanager
def use_runtime(rt: Runtime | None) -> Iterator[Runtime | None]:
    """Run handlers against ``rt`` (the sandbox's or a test's) inside the block.

    ``None`` is a cold container: the next :func:`runtime` builds one from the environment.
    """
    previous, _slot.value = _slot.value, rt
    try:
        yield rt
    finally:
        _slot.value = previous


# --- manual requests -------------------------------------------------------------------------

InvariantName = Literal["routes", "snat", "ippools", "rcc", "vpn", "checks"]
INVARIANT_NAMES: tuple[str, ...] = get_args(InvariantName)
ACTIONS: tuple[str, ...] = ("plan", "apply", "status", "adopt")
USAGE = (
    '{"action": "plan" | "apply" | "status", "scope": ["routes", "snat", ...] (optional)} or '
    '{"action": "adopt", "mode": "plan" | "apply", "only": ["onprem/IPPool/...", ...] (optional)}'
)


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: list[InvariantName] | None = Field(None, min_length=1)

    def scope_of_run(self) -> Scope:
        return Scope.parse(self.scope)


class PlanCommand(_Command):
    """Show what a reconcile would change; write nothing."""

    action: Literal["plan"]


class ApplyCommand(_Command):
    """Repair drift now (unless the kill switch says plan)."""

    action: Literal["apply"]


class StatusCommand(_Command):
    """Read-only health: a plan-mode reconcile, for its findings."""

    action: Literal["status"]


class AdoptCommand(BaseModel):
    """List (mode plan) or take over (mode apply) hand-made objects doing fedkeeper's job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["adopt"]
    mode: Literal["plan", "apply"] = "plan"
    only: list[str] | None = Field(None, min_length=1)


AnyCommand = PlanCommand | ApplyCommand | StatusCommand | AdoptCommand
ManualCommand = Annotated[AnyCommand, Field(discriminator="action")]
_manual = TypeAdapter[AnyCommand](ManualCommand)


class InvalidRequestError(ConfigError):
    """A manual payload that cannot be run; ``errors`` names each field and its fix."""


def parse_manual(payload: Any) -> AnyCommand:
    """The command in a manual payload, or InvalidRequestError naming every problem."""
    if not isinstance(payload, dict):
        raise InvalidRequestError(
            [
                f"request: is {_json_type(payload)}; send a JSON object such as "
                '{"action": "status"}'
            ]
        )
    try:
        return _manual.validate_python(payload)
    except ValidationError as exc:
        raise InvalidRequestError(
            [_problem(err) for err in exc.errors(include_url=False)]
        ) from None


def _json_type(value: Any) -> str:
    """``a list``, ``a string``, ``null``: what a JSON value is, for an error message."""
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else f"a {names.get(type(value), type(value).__name__)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(err: Any) -> str:
    loc = list(err["loc"])
    if loc and loc[0] in ACTIONS:  # pydantic puts the union tag first
        loc = loc[1:]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, value = err["type"], err.get("input")
    actions = ", ".join(ACTIONS)
    invariants = ", ".join(INVARIANT_NAMES)
    if kind == "union_tag_not_found":
        return f"action: is missing; add one of {actions}"
    if kind == "union_tag_invalid":
        tag = value.get("action") if isinstance(value, dict) else value
        return f"action: {_shown(tag)} is not an action; use one of {actions}"
    if kind == "literal_error" and path.startswith("scope["):
        return f"{path}: {_shown(value)} is not an invariant; use one of {invariants}"
    if kind == "literal_error" and path == "mode":
        return f'mode: {_shown(value)} is not a mode; use "plan" (list) or "apply" (take over)'

    if kind == "list_type":
        return (
            f'{path}: is {_json_type(value)}; write a list such as ["routes", "ippools"] '
            f"(names: {invariants})"
        )
    if kind == "too_short":
        return f"{path}: is empty; list at least one of {invariants}, or leave scope out for all"
    if kind == "extra_forbidden":
        return (
            f"{path}: is not a known key; remove it (a request has only action and scope; "
            "adopt has action, mode and only)"
        )
    return f"{path or 'request'}: {err['msg']}; expected {USAGE}"


# --- handler logic ---------------------------------------------------------------------------


def handle_event(event: Any, context: object, handler_name: str) -> dict[str, Any]:
    """The EventBridge handlers' logic: the event's scope reconciled, as a Report dict.

    An event that asks nothing of fedkeeper (unknown, malformed, a failed API call, another
    cluster) returns a no-op Report whose ``trigger`` says why. Raises RetryableError when
    part of the run failed in a way that retrying can fix.
    """
    try:
        rt = runtime()
    except ConfigError as exc:
        return config_failure(handler_name, exc)
    trigger = trigger_for(event, rt.config)
    if trigger is None:
        report = Report(
            mode="plan",
            scope=Scope(frozenset()),
            trigger=f"ignored: {event_summary(event)} asks nothing of fedkeeper",
        )
        metrics.add_metric("EventsIgnored", MetricUnit.Count, 1)
        return finish(rt, report, handler_name)
    report = _reconcile(rt, trigger.scope, "apply", trigger.reason, run_budget(context))
    _defer_while_cut_off(report, trigger, [site.name for site in rt.config.sites()])
    return finish(rt, report, handler_name, budget_s=finish_budget(context))


def handle_manual(payload: Any, context: object = None) -> dict[str, Any]:
    """A manual request to the repair function; a bad one changes nothing.

    ``plan`` and ``status`` never write; ``apply`` writes unless the kill switch says plan.
    A bad payload returns ``{"error": "invalid request", "problems": [...], "usage": ...}``.
    """
    try:
        command = parse_manual(payload)
    except InvalidRequestError as exc:
        metrics.add_metric("InvalidRequests", MetricUnit.Count, 1)
        logger.warning("manual request refused", extra={"problems": exc.errors})
        return {"error": "invalid request", "problems": exc.errors, "usage": USAGE}
    try:
        rt = runtime()
    except ConfigError as exc:
        return config_failure("repair", exc)
    if isinstance(command, AdoptCommand):
        return finish(rt, _adopt(rt, command), "repair", budget_s=finish_budget(context))
    requested: ModeName = "apply" if isinstance(command, ApplyCommand) else "plan"
    report = _reconcile(
        rt,
        command.scope_of_run(),
        requested,
        f"manual {command.action}",
        run_budget(context),
        fresh_preconditions=True,  # someone asked: what they see is read now
    )
    return finish(rt, report, "repair", budget_s=finish_budget(context))


def _adopt(rt: Runtime, command: AdoptCommand) -> Report:
    from fedkeeper.adopt import ADOPT_SCOPE, adopt
    from fedkeeper.service import effective_mode

    mode = effective_mode(command.mode, rt.config, rt.settings.mode)
    reason = f"manual adopt {mode}"
    try:
        return adopt(rt.connections(), mode, only=command.only, trigger=reason)
    except FedkeeperError as exc:
        error = RunError("adopt", str(exc), retryable=isinstance(exc, RetryableError))
        return Report(mode=mode, scope=ADOPT_SCOPE, errors=[error], trigger=reason)


def handle_repair(event: Any, context: object) -> dict[str, Any]:
    """The repair function: an EventBridge event (the schedule) or a manual payload."""
    if is_eventbridge_event(event):
        return handle_event(event, context, "repair")
    return handle_manual(event, context)


EPISODES_TABLE_SUFFIX = "-fedkeeper-episodes"  # the stack names the table <name> + this
# Seconds kept back from the Lambda's remaining time: logging the Report, metrics, SNS.
DEADLINE_MARGIN_S = 20.0


# Seconds kept back at the very end: the Report's return and Lambda's own bookkeeping.
FINISH_MARGIN_S = 2.0


def _remaining_s(context: object) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return float(remaining()) / 1000.0
    except (TypeError, ValueError):
        return None


def run_budget(context: object) -> float | None:
    """The run's time budget: the invocation's remaining time less a margin (None: no limit)."""
    left = _remaining_s(context)
    return None if left is None else max(left - DEADLINE_MARGIN_S, 1.0)


def finish_budget(context: object) -> float | None:
    """What :func:`finish` may spend on SNS and the episode store: what the run left."""
    left = _remaining_s(context)
    return None if left is None else max(left - FINISH_MARGIN_S, 0.5)


def _reconcile(
    rt: Runtime,
    scope: Scope,
    requested: ModeName,
    reason: str,
    budget_s: float | None = None,
    *,
    fresh_preconditions: bool = False,
) -> Report:
    from fedkeeper.service import effective_mode, reconcile

    mode = effective_mode(requested, rt.config, rt.settings.mode)
    try:
        return reconcile(
            rt.connections(),
            scope,
            mode,
            trigger=reason,
            runners=rt.runners,
            deadline_s=budget_s,
            fresh_preconditions=fresh_preconditions,
        )
    except FedkeeperError as exc:
        # The engine reports per-invariant failures itself; this is one it could not place.
        error = RunError("run", str(exc), retryable=isinstance(exc, RetryableError))
        return Report(mode=mode, scope=scope, errors=[error], trigger=reason)


def _defer_while_cut_off(report: Report, trigger: Trigger, sites: list[str]) -> None:
    """An ALARM with no tunnel up: the sites' work waits for the OK, which runs it all."""
    if trigger.tunnel_state != "down" or report.tunnels_up != 0:
        return
    for site in sites:
        if not any(d.target == site for d in report.deferred):
            report.deferred.append(
                Deferred(site, "no VPN tunnel up; runs when a tunnel alarm returns to OK")
            )


def config_failure(handler_name: str, exc: ConfigError) -> dict[str, Any]:
    """Bad settings or federation.yaml: permanent, so reported and counted, not retried.

    Notified once per episode like any persistent trouble, when the settings that name the
    topic and the episodes table can still be read.
    """
    report = Report(
        mode="plan",
        scope=Scope(frozenset()),
        errors=[RunError("config", "; ".join(exc.errors), retryable=False)],
        trigger="configuration",
    )
    try:
        settings: Settings | None = Settings.from_env()
    except ConfigError:
        # Another setting is bad: the topic and the table may still be named correctly.
        wanted = ("FEDKEEPER_TOPIC_ARN", "FEDKEEPER_EPISODES_TABLE")
        try:
            settings = Settings.from_env({k: v for k, v in os.environ.items() if k in wanted})
        except ConfigError:
            settings = None
    if settings is not None and settings.topic_arn:
        import boto3

        from fedkeeper.adapters.aws import ALERT_CONFIG, ALERT_WORST_CALL_S, AwsAdapter

        table = settings.episodes_table or ""
        name = table.removesuffix(EPISODES_TABLE_SUFFIX) or "(unknown federation)"
        aws = AwsAdapter(boto3.Session(), config=ALERT_CONFIG, worst_call_s=ALERT_WORST_CALL_S)
        alert(settings, aws, name, report, time.time())
    return finish(None, report, handler_name)


def finish(
    rt: Runtime | None,
    report: Report,
    handler_name: str,
    sink: MetricsSink | None = None,
    *,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """Log the Report, record its metrics, raise if retrying can help; the Report dict.

    ``sink`` takes the metrics when the caller flushes them itself (the watch function, whose
    invocation outlives many runs); by default they join the handler's shared metric set.
    ``budget_s``: what the invocation has left for SNS and the episode store; a call whose
    worst case would not fit is not made (a hung SNS or DynamoDB cannot hold the function).
    """
    sink = metrics if sink is None else sink
    if rt is not None and rt.on_report is not None:
        rt.on_report(report)
    out = report.to_dict()
    failed = report.errors or any(c.result is Result.FAILED for c in report.changes)
    log = logger.warning if failed else logger.info
    log("fedkeeper run finished", extra={"handler": handler_name, "report": out})
    record_metrics(report, handler_name, sink)
    if rt is not None:
        _tell(rt, report, sink, budget_s)
    retryable = [f"{e.invariant}: {e.message}" for e in report.errors if e.retryable]
    retryable += [
        f"{c.change.target}: {c.error}"
        for c in report.changes
        if c.result in (Result.FAILED, Result.SKIPPED) and c.retryable
    ]
    retryable += [f"{d.target}: {d.reason}" for d in report.deferred if d.retry]
    if retryable:
        # Lambda logs a raised error itself, past our formatter: redact the message here.
        summary = redact("; ".join(retryable))
        raise RetryableError(f"{len(retryable)} retryable failure(s): {summary}")
    return out


def _tell(rt: Runtime, report: Report, sink: MetricsSink, budget_s: float | None) -> None:
    """Notify and record trouble within ``budget_s``, on the short-timeout AWS adapter."""
    from fedkeeper.guard import RunGuard

    if not (rt.settings.topic_arn or rt.settings.episodes_table):
        return  # nowhere to tell
    try:
        conns = rt.connections()
    except FedkeeperError as exc:
        logger.warning("could not notify or record trouble", extra={"error": redact(str(exc))})
        return
    aws = conns.alerting_aws()
    aws.guard = RunGuard.within(budget_s, conns.clock)
    try:
        notify(rt, report, aws)
        if rt.settings.episodes_table:
            alert(rt.settings, aws, rt.config.name, report, rt.wall_clock(), sink)
    finally:
        aws.guard = None


def notify(rt: Runtime, report: Report, aws: AwsAdapter | None = None) -> None:
    """Tell the operators' SNS topic about repairs (with what failed beside them).

    Only a run that repaired something publishes: failures and error findings are told
    once per episode by :func:`alert`, so a standing problem never pages on every run,
    and a healthy federation pages no one. A failed publish is logged, never raised.
    """
    topic = rt.settings.topic_arn
    if not topic:
        return
    repaired = sum(c.result is Result.APPLIED for c in report.changes)
    if not repaired:
        return
    failed = sum(c.result is Result.FAILED for c in report.changes) + len(report.errors)
    errors = sum(f.severity is Severity.ERROR for f in report.findings)
    subject = (
        f"fedkeeper {rt.config.name}: {repaired} repaired, {failed} failed, "
        f"{errors} error finding(s)"
    )[:100]
    try:
        (aws or rt.connections().alerting_aws()).publish(
            topic, subject, json.dumps(report.to_dict(), indent=2)
        )
    except FedkeeperError as exc:
        logger.warning("could not notify the topic", extra={"error": redact(str(exc))})


class _Memories:
    """The container's own memory of trouble, by episodes table: what :func:`alert` falls
    back on while the store cannot be read (kept as long as the container is warm)."""

    by_table: dict[str, episodes.Memory] = {}


def alert(
    settings: Settings,
    aws: AwsAdapter,
    federation: str,
    report: Report,
    now: float,
    sink: MetricsSink | None = None,
) -> None:
    """Persistent trouble: one notification when an episode starts, one when it ends.

    The open episodes live in one DynamoDB item written conditionally (its version), so
    two functions finishing at once cannot both notify the same episode: a notification is
    claimed in the store, published, then recorded as sent (a failed publish is tried
    again by the next run). With the store down, the function's own memory notifies each
    episode at most once an hour and says so. Publishes the ``PersistentTrouble`` metric
    (open, notified episodes) that the stack's alarm watches. A failure here is logged,
    never raised: alerting must not break the run it reports.
    """
    table, topic = settings.episodes_table, settings.topic_arn
    if not table:
        return
    memory = _Memories.by_table.setdefault(table, episodes.Memory())
    window_s, after_runs = settings.alert_window_minutes * 60, settings.alert_after_runs
    out = metrics if sink is None else sink
    try:
        result = _record_episodes(aws, table, report, now, window_s, after_runs)
    except FedkeeperError as exc:
        error = redact(str(exc))
        logger.warning("episode store down: notifying from memory", extra={"error": error})
        due = memory.step(report, now, error, window_s=window_s, after_runs=after_runs)
        for ep in due:
            if not topic:
                break
            try:
                aws.publish(
                    topic,
                    f"fedkeeper {federation}: persistent trouble: {ep.key} (store down)"[:100],
                    f"{episodes.describe(ep, now)}\n\nThe episode store {table} cannot be read "
                    f"({error}): this notice comes from the function's own memory, at most "
                    "once an hour for each trouble until the store is back.",
                )
            except FedkeeperError as err:
                logger.warning("could not notify the topic", extra={"error": redact(str(err))})
                break
            memory.sent[ep.key] = now
        out.add_metric("PersistentTrouble", MetricUnit.Count, len(due))
        return
    if result is None:
        logger.warning("episodes: another run kept winning the write; nothing notified")
        return
    sent: set[str] = set()
    unsent: set[str] = set()
    for ep in [*result.opened, *result.closed]:
        if not topic or (not ep.recovered and memory.sent_lately(ep.key, now)):
            sent.add(ep.key)  # no topic, or told from memory while the store was down
            continue
        subject, text = (
            (f"recovered: {ep.key}", f"{episodes.describe(ep, now)}; well again since this run")
            if ep.recovered
            else (f"persistent trouble: {ep.key}", episodes.describe(ep, now))
        )
        try:
            aws.publish(topic, f"fedkeeper {federation}: {subject}"[:100], text)
        except FedkeeperError as exc:
            logger.warning("could not notify the topic", extra={"error": redact(str(exc))})
            unsent.add(ep.key)
        else:
            sent.add(ep.key)
    final = result.episodes
    if sent or unsent:
        final = _confirm_episodes(aws, table, sent, unsent) or episodes.confirm(final, sent, unsent)
    open_count = sum(e.notified and not e.recovered for e in final.values())
    out.add_metric("PersistentTrouble", MetricUnit.Count, open_count)


def _record_episodes(
    aws: AwsAdapter, table: str, report: Report, now: float, window_s: float, after_runs: int
) -> episodes.Step | None:
    """Step the stored episodes by this run (conditional write); None: lost every race."""
    for _ in range(3):
        data, version = aws.read_episodes(table)
        before = episodes.parse_store(data)
        result = episodes.step(before, report, now, window_s=window_s, after_runs=after_runs)
        if result.episodes == before and not (result.opened or result.closed):
            return result  # nothing wrong, before or now: a quiet run writes nothing
        if aws.write_episodes(table, episodes.dump_store(result.episodes), version):
            return result
    return None


def _confirm_episodes(
    aws: AwsAdapter, table: str, sent: set[str], unsent: set[str]
) -> dict[str, episodes.Episode] | None:
    """Record what was published (and free the claims of what was not); None on failure."""
    try:
        for _ in range(3):
            data, version = aws.read_episodes(table)
            store = episodes.confirm(episodes.parse_store(data), sent, unsent)
            if aws.write_episodes(table, episodes.dump_store(store), version):
                return store
    except FedkeeperError as exc:
        logger.warning("could not record what was notified", extra={"error": redact(str(exc))})
    return None


def record_metrics(report: Report, handler_name: str, sink: MetricsSink | None = None) -> None:
    """The Report as EMF metrics (see the module docstring for the names)."""
    out = metrics if sink is None else sink
    count = MetricUnit.Count
    out.add_metadata("handler", handler_name)
    if report.trigger:
        out.add_metadata("trigger", report.trigger)
    found = Counter(c.change.invariant.value for c in report.changes)
    repaired = Counter(
        c.change.invariant.value for c in report.changes if c.result is Result.APPLIED
    )
    out.add_metric("DriftFound", count, found.total())
    out.add_metric("DriftRepaired", count, repaired.total())
    for name, n in sorted(found.items()):
        out.add_metric(f"DriftFound.{name}", count, n)
    for name, n in sorted(repaired.items()):
        out.add_metric(f"DriftRepaired.{name}", count, n)
    failures = sum(c.result is Result.FAILED for c in report.changes) + len(report.errors)
    out.add_metric("Deferred", count, len(report.deferred))
    out.add_metric("Failures", count, failures)
    out.add_metric("Findings", count, len(report.findings))
    if report.tunnels_up is not None:
        out.add_metric("TunnelsUp", count, report.tunnels_up)
