"""The stacks follow the config beyond the example: more zones, a DNS API endpoint, an
existing secret, Graviton nodes, plan mode, an existing CloudTrail trail, interface
endpoints, log storage off, pinned add-on versions. One more synth for the whole module."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import EXAMPLE_CONFIG, PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fed/onprem"
PULL_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:tigera/pull-AbCdEf"


@dataclass(frozen=True)
class Variant:
    network: dict[str, Any]
    cluster: dict[str, Any]
    calico: dict[str, Any]
    automation: dict[str, Any]

    @staticmethod
    def resources(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
        return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def _write_chart(path: Path) -> None:
    """A packaged chart as `helm pull` writes it: a gzipped tar with Chart.yaml inside."""
    chart = b"apiVersion: v2\nname: tigera-operator\nversion: v3.23.1\n"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("tigera-operator/Chart.yaml")
        info.size = len(chart)
        tar.addfile(info, io.BytesIO(chart))


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Variant:
    import aws_cdk as cdk

    from fedkeeper.topology import load_mesh
    from stacks import add_compliance_checks, build_stacks, feature_flags

    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["mode"] = "plan"
    data["aws"]["vpc"].update(az_count=3, nat_gateways=2)
    data["eks"]["node_group"]["instance_types"] = ["m7g.large"]
    data["onprem"]["api_endpoint"] = "https://k8s.onprem.example"
    data["onprem"]["credentials_secret"] = SECRET_ARN
    data["reconcile"]["schedule"] = "rate(5 minutes)"
    data["aws"]["cloudtrail"] = "existing"
    data["eks"]["calico"]["chart_file"] = "charts/tigera-operator-v3.23.1.tgz"
    data["eks"]["calico"]["values"] = {"installation": {"controlPlaneReplicas": 3}}
    data["aws"]["vpc"]["interface_endpoints"] = True
    data["eks"]["calico"]["log_storage"] = False
    data["eks"]["calico"]["pull_secret_source"] = PULL_SECRET_ARN
    data["eks"]["addon_versions"] = {"kube-proxy": "v1.36.0-eksbuild.2"}
    workdir = tmp_path_factory.mktemp("variant")
    (workdir / "charts").mkdir()
    _write_chart(workdir / "charts" / "tigera-operator-v3.23.1.tgz")
    config_file = workdir / "federation.yaml"
    config_file.write_text(yaml.safe_dump(data))
    outdir = workdir / "cdk.out"

    # Code-only asset: this module checks the templates, not the bundle.
    app = cdk.App(
        outdir=str(outdir), context={**feature_flags(PROJECT_ROOT), "skipLambdaDeps": "true"}
    )
    config = load_mesh(config_file)
    build_stacks(app, config, config_file, PROJECT_ROOT)
    add_compliance_checks(app)
    app.synth()

    def template(stack: str) -> dict[str, Any]:
        path: Path = outdir / f"{config.name}-{stack}.template.json"
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded

    return Variant(
        template("network"), template("cluster"), template("calico"), template("automation")
    )


def test_every_zone_gets_subnets_and_the_configured_nat_gateways(variant: Variant) -> None:
    subnets = Variant.resources(variant.network, "AWS::EC2::Subnet")
    zones = {s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in subnets}

    assert len(subnets) == 6
    assert zones == {0, 1, 2}
    assert len(Variant.resources(variant.network, "AWS::EC2::NatGateway")) == 2
    (propagation,) = Variant.resources(variant.network, "AWS::EC2::VPNGatewayRoutePropagation")
    assert len(propagation["Properties"]["RouteTableIds"]) == 3


def test_a_dns_api_endpoint_opens_its_port_towards_the_onprem_hosts(variant: Variant) -> None:
    (group,) = [
        g
        for g in Variant.resources(variant.automation, "AWS::EC2::SecurityGroup")
        if "fedkeeper Lambdas" in g["Properties"]["GroupDescription"]
    ]
    egress = {(r["CidrIp"], r["FromPort"]) for r in group["Properties"]["SecurityGroupEgress"]}

    assert egress == {("0.0.0.0/0", 443), ("192.168.0.0/16", 443)}


def test_an_existing_secret_is_read_not_created(variant: Variant) -> None:
    assert not Variant.resources(variant.automation, "AWS::SecretsManager::Secret")
    (policy,) = [
        p
        for p in Variant.resources(variant.automation, "AWS::IAM::Policy")
        if "Reconciler" in p["Properties"]["PolicyName"]
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}

    assert statements["ReadOnpremKubeconfig"]["Resource"] == f"{SECRET_ARN}-??????"
    decrypt = statements["DecryptOnpremKubeconfig"]
    assert decrypt["Resource"] == "*"
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.eu-west-1.amazonaws.com"
    )


def test_functions_get_the_mode_and_the_secret_arn_from_the_config(variant: Variant) -> None:
    functions = [
        f
        for f in Variant.resources(variant.automation, "AWS::Lambda::Function")
        if f["Properties"].get("Handler", "").startswith("lambdas.")
    ]

    assert len(functions) == 5  # the four handlers and the watch function
    for function in functions:
        env = function["Properties"]["Environment"]["Variables"]
        assert env["FEDKEEPER_MODE"] == "plan"
        assert env["FEDKEEPER_ONPREM_SECRET_ARN"] == SECRET_ARN


def test_graviton_instance_types_get_the_arm_node_image(variant: Variant) -> None:
    (nodegroup,) = Variant.resources(variant.cluster, "AWS::EKS::Nodegroup")

    assert nodegroup["Properties"]["AmiType"] == "AL2023_ARM_64_STANDARD"
    assert nodegroup["Properties"]["InstanceTypes"] == ["m7g.large"]


def test_the_schedule_follows_the_config(variant: Variant) -> None:
    schedules = [
        r["Properties"]["ScheduleExpression"]
        for r in Variant.resources(variant.automation, "AWS::Events::Rule")
        if "ScheduleExpression" in r["Properties"]
    ]

    assert sorted(schedules) == ["rate(1 minute)", "rate(5 minutes)"]  # watch, repair


def test_an_existing_trail_is_documented_not_created(variant: Variant) -> None:
    assert Variant.resources(variant.automation, "AWS::CloudTrail::Trail") == []
    assert Variant.resources(variant.automation, "AWS::S3::Bucket") == []
    output = variant.automation["Outputs"]["CloudTrailRequirement"]
    assert "CloudTrail trail with logging covers this region" in output["Description"]


def test_an_air_gapped_chart_is_shipped_as_an_s3_asset(variant: Variant) -> None:
    (chart,) = Variant.resources(variant.calico, "Custom::AWSCDK-EKS-HelmChart")
    props = chart["Properties"]

    assert "Repository" not in props
    assert "Chart" not in props
    assert "ChartAssetURL" in props
    assert "Version" not in props  # the packaged chart carries it


def test_configured_values_are_merged_over_fedkeepers(variant: Variant) -> None:
    (chart,) = Variant.resources(variant.calico, "Custom::AWSCDK-EKS-HelmChart")
    installation = json.loads(chart["Properties"]["Values"])["installation"]

    assert installation["controlPlaneReplicas"] == 3
    assert installation["cni"] == {"type": "AmazonVPC"}
    assert installation["variant"] == "TigeraSecureEnterprise"


def test_interface_endpoints_serve_every_api_the_functions_call_in_each_private_subnet(
    variant: Variant,
) -> None:
    from stacks.network import INTERFACE_ENDPOINT_SERVICES

    endpoints = Variant.resources(variant.network, "AWS::EC2::VPCEndpoint")
    interface = [
        e["Properties"] for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"
    ]
    names = {json.dumps(e["ServiceName"]).rsplit(".", 1)[-1].strip('"]}') for e in interface}
    gateway = [e for e in endpoints if e["Properties"].get("VpcEndpointType") == "Gateway"]

    assert names == set(INTERFACE_ENDPOINT_SERVICES)
    assert all(len(e["SubnetIds"]) == 3 and e["PrivateDnsEnabled"] for e in interface)
    assert len(gateway) == 1 and "dynamodb" in json.dumps(gateway[0]["Properties"]["ServiceName"])


def test_log_storage_off_needs_no_storage_class(variant: Variant) -> None:
    manifests = [
        o
        for r in Variant.resources(variant.cluster, "Custom::AWSCDK-EKS-KubernetesResource")
        for o in json.loads(r["Properties"]["Manifest"])
    ]
    (chart,) = Variant.resources(variant.calico, "Custom::AWSCDK-EKS-HelmChart")

    assert not [o for o in manifests if o["kind"] == "StorageClass"]
    assert json.loads(chart["Properties"]["Values"])["logStorage"] == {"enabled": False}


def test_a_pinned_add_on_version_is_deployed_and_the_others_follow_eks(variant: Variant) -> None:
    versions = {
        a["Properties"]["AddonName"]: a["Properties"].get("AddonVersion")
        for a in Variant.resources(variant.cluster, "AWS::EKS::Addon")
    }

    assert versions["kube-proxy"] == "v1.36.0-eksbuild.2"
    assert versions["coredns"] is None


def test_the_installer_reads_a_pull_secret_given_by_arn(variant: Variant) -> None:
    (policy,) = [
        p
        for p in Variant.resources(variant.calico, "AWS::IAM::Policy")
        if "ReadCalicoSecrets" in json.dumps(p)
    ]
    (read,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "ReadCalicoSecrets"
    ]

    assert PULL_SECRET_ARN in read["Resource"]
