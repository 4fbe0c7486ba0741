"""Settings, the per-container runtime, manual requests and redaction (no I/O)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, get_args

import pytest

from fedkeeper import lambda_runtime as lr
from fedkeeper.config import FederationConfig
from fedkeeper.errors import ConfigError
from fedkeeper.lambda_runtime import (
    DEFAULT_CONFIG_PATH,
    ApplyCommand,
    InvalidRequestError,
    InvariantName,
    PlanCommand,
    RedactingFormatter,
    Runtime,
    Settings,
    StatusCommand,
    parse_manual,
    redact,
    runtime,
    use_runtime,
)
from fedkeeper.model import ALL_INVARIANTS
from tests.lambda_support import BAD_MANUAL, load_event

# --- settings --------------------------------------------------------------------------------


def test_settings_default_to_discovery_and_the_config_beside_the_code() -> None:
    s = Settings.from_env({"PATH": "/usr/bin", "AWS_REGION": "eu-west-1"})
    assert s.config_path == DEFAULT_CONFIG_PATH
    assert DEFAULT_CONFIG_PATH.parent == Path(lr.__file__).resolve().parent.parent
    assert (s.mode, s.vpc_id, s.vgw_id, s.cluster_name, s.onprem_secret_arn) == (None,) * 5


def test_settings_read_every_variable_the_stack_sets() -> None:
    s = Settings.from_env(
        {
            "FEDKEEPER_CONFIG_PATH": "/var/task/federation.yaml",
            "FEDKEEPER_MODE": "plan",
            "FEDKEEPER_VPC_ID": "vpc-1",
            "FEDKEEPER_VGW_ID": "vgw-1",
            "FEDKEEPER_VPN_CONNECTION_ID": "vpn-1",
            "FEDKEEPER_CLUSTER_NAME": "fed-eks",
            "FEDKEEPER_ONPREM_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "FEDKEEPER_TOPIC_ARN": "arn:aws:sns:eu-west-1:1:fedkeeper",
        }
    )
    assert s.config_path == Path("/var/task/federation.yaml")
    assert (s.mode, s.vpc_id, s.vgw_id, s.vpn_connection_id) == ("plan", "vpc-1", "vgw-1", "vpn-1")
    assert s.cluster_name == "fed-eks"
    assert s.onprem_secret_arn and s.topic_arn


def test_an_empty_variable_means_unset_and_mode_ignores_case() -> None:
    s = Settings.from_env(
        {"FEDKEEPER_CONFIG_PATH": "", "FEDKEEPER_VPC_ID": " ", "FEDKEEPER_MODE": " PLAN "}
    )
    assert (s.config_path, s.vpc_id, s.mode) == (DEFAULT_CONFIG_PATH, None, "plan")


def test_a_misspelt_kill_switch_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigError) as bad_value:
        Settings.from_env({"FEDKEEPER_MODE": "dry-run"})
    with pytest.raises(ConfigError) as bad_name:
        Settings.from_env({"FEDKEEPER_MODEL": "plan"})
    assert bad_value.value.errors == [
        "FEDKEEPER_MODE: 'dry-run' is not a mode; set plan or apply, or leave it unset"
    ]
    assert bad_name.value.errors[0].startswith("FEDKEEPER_MODEL: is not a fedkeeper setting;")
    assert "FEDKEEPER_MODE" in bad_name.value.errors[0]


# --- the runtime -----------------------------------------------------------------------------


def test_the_runtime_is_built_once_per_container(
    monkeypatch: pytest.MonkeyPatch, example_path: Path
) -> None:
    monkeypatch.setenv("FEDKEEPER_CONFIG_PATH", str(example_path))
    with use_runtime(None):  # a cold container
        first = runtime()
        assert runtime() is first
        assert first.config.name == "fed-demo"


def test_connections_are_built_on_first_use_and_kept(
    monkeypatch: pytest.MonkeyPatch, example_config: FederationConfig
) -> None:
    built: list[object] = []

    def build(settings: Settings, config: FederationConfig) -> object:
        built.append(object())
        return built[-1]

    monkeypatch.setattr(lr, "build_connections", build)
    rt = Runtime(Settings.from_env({}), example_config)
    assert built == []
    assert rt.connections() is rt.connections()
    assert len(built) == 1


def test_production_connections_carry_the_stacks_ids(example_config: FederationConfig) -> None:
    settings = Settings.from_env(
        {
            "FEDKEEPER_VPC_ID": "vpc-1",
            "FEDKEEPER_VGW_ID": "vgw-1",
            "FEDKEEPER_CLUSTER_NAME": "fed-eks",
            "FEDKEEPER_ONPREM_SECRET_ARN": "arn:secret",
        }
    )
    conns = lr.build_connections(settings, example_config)
    assert conns.session.region_name == "eu-west-1"
    t = conns.targets
    assert (t.vpc_id, t.vgw_id, t.cluster_name, t.onprem_secret) == (
        "vpc-1",
        "vgw-1",
        "fed-eks",
        "arn:secret",
    )


def test_use_runtime_injects_and_restores(example_config: FederationConfig) -> None:
    outer = Runtime(Settings.from_env({}), example_config)
    inner = Runtime(Settings.from_env({}), example_config)
    with use_runtime(outer):
        with use_runtime(inner):
            assert runtime() is inner
        assert runtime() is outer


def test_a_missing_config_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FEDKEEPER_CONFIG_PATH", str(tmp_path / "nope.yaml"))
    with use_runtime(None), pytest.raises(ConfigError, match="no such file"):
        runtime()


# --- manual requests -------------------------------------------------------------------------


def test_the_scope_names_are_the_invariants() -> None:
    assert set(get_args(InvariantName)) == {i.value for i in ALL_INVARIANTS}


@pytest.mark.parametrize(
    ("name", "kind", "scope"),
    [
        ("manual/plan.json", PlanCommand, None),
        ("manual/status.json", StatusCommand, None),
        ("manual/apply_routes_ippools.json", ApplyCommand, ["routes", "ippools"]),
    ],
)
def test_good_manual_payloads_parse(name: str, kind: type, scope: list[str] | None) -> None:
    command = parse_manual(load_event(name))
    assert isinstance(command, kind)
    assert command.scope == scope


def test_a_manual_command_without_scope_covers_everything() -> None:
    assert parse_manual({"action": "plan"}).scope_of_run().names() == [
        "vpn",
        "routes",
        "snat",
        "ippools",
        "rcc",
        "checks",
    ]


@pytest.mark.parametrize(("name", "field"), BAD_MANUAL.items())
def test_a_bad_manual_payload_names_the_field_and_the_fix(name: str, field: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_manual(load_event(name))
    (problem,) = exc.value.errors
    assert problem.startswith(f"{field}: ")
    _, fix = problem.split("; ", 1)  # what is wrong; then how to fix it
    assert fix.split()[0] in {"use", "add", "write", "remove", "send"}


def test_every_bad_scope_entry_is_reported() -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_manual({"action": "plan", "scope": ["route", "vpn", 7]})
    assert exc.value.errors == [
        "scope[0]: 'route' is not an invariant; use one of routes, snat, ippools, rcc, vpn, checks",
        "scope[2]: 7 is not an invariant; use one of routes, snat, ippools, rcc, vpn, checks",
    ]


def test_an_empty_scope_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"scope: is empty"):
        parse_manual({"action": "apply", "scope": []})


def test_a_long_bad_value_is_shortened_in_the_problem() -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_manual({"action": "x" * 500})
    assert len(exc.value.errors[0]) < 120


# --- secrets never reach a log ---------------------------------------------------------------


def test_redact_masks_sensitive_keys_at_any_depth() -> None:
    record = {
        "report": {"changes": [{"target": "onprem/Secret/calico-system/x", "result": "applied"}]},
        "kubeconfig": "apiVersion: v1...",
        "nested": [{"Authorization": "Bearer abc"}, {"clientRequestToken": "t-1"}],
        "password": 5,
    }
    assert redact(record) == {
        "report": {"changes": [{"target": "onprem/Secret/calico-system/x", "result": "applied"}]},
        "kubeconfig": "*****",
        "nested": [{"Authorization": "*****"}, {"clientRequestToken": "*****"}],
        "password": "*****",
    }


@pytest.mark.parametrize(
    "text",
    [
        "401 with header Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig",
        "token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u",
        'kubeconfig {"token": "s3cr3t-value"}',
        "password=hunter2 rejected",
    ],
)
def test_redact_masks_tokens_inside_messages(text: str) -> None:
    masked = redact(text)
    for secret in ("eyJhbGci", "aHR0cHM6", "s3cr3t-value", "hunter2"):
        assert secret not in masked
    assert "*****" in masked


def test_the_log_formatter_redacts_every_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter())
    log = logging.getLogger("test-redaction")
    log.addHandler(handler)
    log.propagate = False
    log.warning(
        "refresh failed for Bearer abc.def", extra={"onprem": {"token": "t0ps3cret", "ok": 1}}
    )
    record: dict[str, Any] = json.loads(stream.getvalue())
    assert record["onprem"] == {"token": "*****", "ok": 1}
    assert "abc.def" not in record["message"]
