"""`fedkeeper preflight` against a fresh sandbox account: one test per check.

Given a prepared account (bootstrapped, Calico secrets stored), every check passes; each
test then takes one thing away and expects exactly that check to fail and name the fix.
The day is fixed, so the EKS support window does not depend on when the tests run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.preflight import Preflight, run_preflight
from fedkeeper.sandbox.aws import SandboxAws
from fedkeeper.sandbox.preflight_aws import (
    AccountLimits,
    bootstrap_account,
    preflight_sandbox,
    put_calico_secrets,
    register_preflight_gap_fills,
)
from tests.conftest import EXAMPLE

TODAY = date(2026, 12, 7)


@pytest.fixture
def config() -> FederationConfig:
    return load_config(EXAMPLE)


def _run(
    config: FederationConfig,
    limits: AccountLimits | None = None,
    *,
    prepared: bool = True,
    before: Any = None,
    today: date = TODAY,
) -> Preflight:
    with preflight_sandbox(config, limits, prepared=prepared) as (session, account):
        if before is not None:
            before(session)
        return run_preflight(session, config, account, today)


def _failed(result: Preflight) -> dict[str, str]:
    return {c.name: f"{c.message} | {c.fix}" for c in result.checks if c.status == "fail"}


def test_a_prepared_account_is_ready(config: FederationConfig) -> None:
    result = _run(config)

    assert result.ready, _failed(result)
    assert {c.name for c in result.checks} >= {
        "bootstrap",
        "lambda-concurrency",
        "quota.vpcs",
        "quota.elastic-ips",
        "quota.nat-gateways",
        "quota.vgws",
        "quota.vpns",
        "secret.pull",
        "secret.license",
        "secret.onprem",
        "eks-version",
        "onprem-endpoint",
    }


def test_an_account_never_bootstrapped_fails_with_the_bootstrap_command(
    config: FederationConfig,
) -> None:
    result = _run(config, prepared=False)

    failed = _failed(result)
    assert "cdk bootstrap aws://123456789012/eu-west-1" in failed["bootstrap"]


def test_an_old_bootstrap_version_fails(config: FederationConfig) -> None:
    def old(session: Any) -> None:
        session.client("cloudformation").delete_stack(StackName="CDKToolkit")
        bootstrap_account(session, version=5)

    failed = _failed(_run(config, before=old))

    assert "version 5" in failed["bootstrap"]


def test_each_missing_secret_is_named_with_the_command_that_stores_it(
    config: FederationConfig,
) -> None:
    def forget(session: Any) -> None:
        sm = session.client("secretsmanager")
        for name in ("tigera-pull-secret", "tigera-license"):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)

    failed = _failed(_run(config, before=forget))

    assert "tigera-pull-secret is missing" in failed["secret.pull"]
    assert "create-secret --name tigera-pull-secret" in failed["secret.pull"]
    assert "tigera-license is missing" in failed["secret.license"]


def test_a_pull_secret_that_is_not_a_docker_config_fails_without_showing_it(
    config: FederationConfig,
) -> None:
    def garble(session: Any) -> None:
        session.client("secretsmanager").put_secret_value(
            SecretId="tigera-pull-secret", SecretString="hunter2-not-json"
        )

    failed = _failed(_run(config, before=garble))

    assert "not JSON" in failed["secret.pull"]
    assert "hunter2" not in failed["secret.pull"]


def test_a_foreign_secret_under_the_onprem_name_would_block_the_stack(
    config: FederationConfig,
) -> None:
    def squat(session: Any) -> None:
        session.client("secretsmanager").create_secret(
            Name=config.sole_site().credentials_secret, SecretString="{}"
        )

    failed = _failed(_run(config, before=squat))

    assert "not this federation's" in failed["secret.onprem"]


def test_a_new_accounts_concurrency_quota_is_enough_since_no_function_reserves_any(
    config: FederationConfig,
) -> None:
    failed = _failed(_run(config, AccountLimits(lambda_concurrency=10)))

    assert "lambda-concurrency" not in failed


def test_no_vpc_left_in_the_quota_fails_naming_the_quota(config: FederationConfig) -> None:
    def fill(session: Any) -> None:
        ec2 = session.client("ec2")
        for i in range(4):  # moto's default VPC is the fifth
            ec2.create_vpc(CidrBlock=f"10.{200 + i}.0.0/16")

    failed = _failed(_run(config, before=fill))

    assert "VPCs per Region: 5 in use + 1" in failed["quota.vpcs"]
    assert "L-F678F1CE" in failed["quota.vpcs"]


def test_no_elastic_ip_left_for_the_nat_gateways_fails(config: FederationConfig) -> None:
    def take(session: Any) -> None:
        session.client("ec2").allocate_address(Domain="vpc")

    failed = _failed(_run(config, AccountLimits(elastic_ips=1), before=take))

    assert "EC2-VPC Elastic IPs: 1 in use + 1" in failed["quota.elastic-ips"]


def changed(config: FederationConfig, name: str, **fields: Any) -> FederationConfig:
    """``config`` with the cluster called ``name`` changed (not validated again)."""
    clusters = [c.model_copy(update=fields) if c.name == name else c for c in config.clusters]
    return config.model_copy(update={"clusters": clusters})


def test_a_version_with_less_than_six_months_of_standard_support_fails(
    config: FederationConfig,
) -> None:
    old = changed(config, config.sole_eks().name, kubernetes_version="1.35")

    failed = _failed(_run(old))

    assert "1.35 leaves standard support on 2027-03-27" in failed["eks-version"]
    assert 'set eks.kubernetes_version to "1.36"' in failed["eks-version"]


def test_a_version_eks_no_longer_offers_fails(config: FederationConfig) -> None:
    gone = changed(config, config.sole_eks().name, kubernetes_version="1.29")

    failed = _failed(_run(gone))

    assert "EKS does not offer 1.29" in failed["eks-version"]


def test_an_onprem_endpoint_outside_the_host_cidrs_fails(config: FederationConfig) -> None:
    moved = changed(config, config.sole_site().name, api_endpoint="https://172.16.0.10:6443")

    failed = _failed(_run(moved))

    assert "172.16.0.10 is in no onprem.host_cidrs" in failed["onprem-endpoint"]


def test_an_onprem_endpoint_name_says_what_resolving_it_from_the_vpc_needs(
    config: FederationConfig,
) -> None:
    named = changed(
        config, config.sole_site().name, api_endpoint="https://api.onprem.example.internal:6443"
    )

    result = _run(named)
    (check,) = [c for c in result.checks if c.name == "onprem-endpoint"]

    assert check.status == "warn"
    assert "forwarding rule" in check.fix
    assert result.ready  # the deploy itself does not depend on it


@pytest.fixture
def cli_config(tmp_path: Any) -> str:
    path = tmp_path / "federation.yaml"
    path.write_text(EXAMPLE.read_text())
    return str(path)


def test_the_cli_exits_0_ready_or_1_naming_what_would_fail(
    cli_config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedkeeper.cli import main
    from fedkeeper.eks_versions import MIN_STANDARD_SUPPORT_LEFT_DAYS, standard_support_end

    code = main(["preflight", "-c", cli_config, "--sandbox"])
    out = capsys.readouterr().out

    assert out.startswith("fedkeeper preflight · config ")
    end = standard_support_end("1.36")
    assert end is not None
    # The only check that depends on the day is the EKS version's.
    expect_ready = (end - date.today()).days >= MIN_STANDARD_SUPPORT_LEFT_DAYS
    assert code == (0 if expect_ready else 1)
    assert ("ready: cdk deploy --all should succeed" in out) is expect_ready


def test_the_cli_refuses_a_bad_config_with_exit_2(tmp_path: Any) -> None:
    from fedkeeper.cli import main

    bad = tmp_path / "federation.yaml"
    bad.write_text(EXAMPLE.read_text().replace("nat_gateways: 1", "nat_gateways: 9"))

    assert main(["preflight", "-c", str(bad), "--sandbox"]) == 2


def test_a_call_the_caller_may_not_make_is_a_failed_check_not_a_crash(
    config: FederationConfig,
) -> None:
    with SandboxAws(config.aws.region) as aws:
        session = aws.session()
        aws.fail_next("ec2", "DescribeVpcs", "UnauthorizedOperation", status=403)
        register_preflight_gap_fills(session, AccountLimits(today=TODAY))
        bootstrap_account(session)
        put_calico_secrets(session, config)
        result = run_preflight(session, config, "123456789012", TODAY)

    failed = _failed(result)
    assert "DescribeVpcs failed (UnauthorizedOperation)" in failed["quota"]
    assert "bootstrap" not in failed
