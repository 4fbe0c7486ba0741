"""The mesh example's stacks: a network, cluster and calico stack per EKS cluster, a site
stack per on-prem site, the peerings with their routes, and one automation stack covering
every cluster, VPC and VPN. One synth for the module (the session's ``mesh_synth``)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file

from fedkeeper.rbac import RECONCILER_GROUP
from fedkeeper.topology import migrate, parse_mesh
from stacks import home_network, stack_prefix, two_cluster_layout
from tests.infra.conftest import EXAMPLE_CONFIG, MeshSynth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

Target = tuple[str, str]  # (stack name, logical id) a value refers to


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _target(mesh: MeshSynth, stack: str, value: Any) -> Target:
    """The resource a Ref, GetAtt or cross-stack output (Fn::GetStackOutput) points at."""
    if "Fn::GetStackOutput" in value:
        ref = value["Fn::GetStackOutput"]
        owner = ref["StackName"]
        return _target(mesh, owner, mesh.templates[owner]["Outputs"][ref["OutputName"]]["Value"])
    if "Ref" in value:
        return stack, value["Ref"]
    return stack, value["Fn::GetAtt"][0]


def _targets(mesh: MeshSynth, stack: str, values: list[Any]) -> set[Target]:
    return {_target(mesh, stack, v) for v in values}


def _private_route_tables(mesh: MeshSynth, eks: str) -> set[Target]:
    name = mesh.stacks.networks[eks].stack_name
    tables = _resources(mesh.templates[name], "AWS::EC2::RouteTable")
    return {(name, k) for k in tables if "private" in k}


def _vpn_connections(mesh: MeshSynth) -> dict[Target, dict[str, Any]]:
    return {
        (site.stack_name, k): r
        for site in mesh.stacks.sites.values()
        for k, r in _resources(mesh.templates[site.stack_name], "AWS::EC2::VPNConnection").items()
    }


def _automation(mesh: MeshSynth) -> dict[str, Any]:
    return mesh.templates[mesh.stacks.automation.stack_name]


def test_each_eks_cluster_gets_three_stacks_each_site_one_plus_peerings_and_one_automation(
    mesh_synth: MeshSynth,
) -> None:
    config = mesh_synth.config
    per_cluster = {
        f"{stack_prefix(config, c.name)}-{kind}"
        for c in config.eks_clusters()
        for kind in ("network", "cluster", "calico")
    }
    expected = {
        *per_cluster,
        *(f"{config.name}-{s.name}-site" for s in config.sites()),
        f"{config.name}-peerings",
        f"{config.name}-automation",
    }

    assert set(mesh_synth.templates) == expected
    assert len(expected) == 3 * len(config.eks_clusters()) + len(config.sites()) + 2
    # The home cluster keeps the names a two-cluster federation's stacks always had.
    assert f"{config.name}-network" in expected


def test_each_vgw_gets_one_bgp_vpn_per_site_that_reaches_its_vpc(mesh_synth: MeshSynth) -> None:
    config = mesh_synth.config
    per_vgw = Counter(
        _target(mesh_synth, stack, r["Properties"]["VpnGatewayId"])
        for (stack, _), r in _vpn_connections(mesh_synth).items()
    )
    expected = Counter(
        {
            (mesh_synth.stacks.networks[c.name].stack_name, vgw): len(config.sites_of(c.name))
            for c in config.eks_clusters()
            for vgw in _resources(
                mesh_synth.templates[mesh_synth.stacks.networks[c.name].stack_name],
                "AWS::EC2::VPNGateway",
            )
        }
    )

    assert per_vgw == expected
    for vpn in _vpn_connections(mesh_synth).values():
        assert vpn["Properties"]["StaticRoutesOnly"] is False


def test_each_site_stack_has_its_customer_gateway_and_the_configured_ike_versions(
    mesh_synth: MeshSynth,
) -> None:
    for site in mesh_synth.config.sites():
        template = mesh_synth.templates[mesh_synth.stacks.sites[site.name].stack_name]
        (gateway,) = _resources(template, "AWS::EC2::CustomerGateway").values()
        vpns = _resources(template, "AWS::EC2::VPNConnection").values()

        assert gateway["Properties"]["BgpAsn"] == site.customer_gateway.bgp_asn
        assert gateway["Properties"]["IpAddress"] == str(site.customer_gateway.ip)
        assert len(vpns) == len(site.vpns)
        for vpn, configured in zip(vpns, site.vpns, strict=True):
            for tunnel in vpn["Properties"]["VpnTunnelOptionsSpecifications"]:
                offered = [v["Value"] for v in tunnel["IKEVersions"]]
                assert offered == list(configured.ike_versions)


def test_network_stacks_hold_no_vpn_in_a_mesh_but_propagate_their_vgw_routes(
    mesh_synth: MeshSynth,
) -> None:
    for eks, network in mesh_synth.stacks.networks.items():
        template = mesh_synth.templates[network.stack_name]
        (propagation,) = _resources(template, "AWS::EC2::VPNGatewayRoutePropagation").values()
        tables = _targets(
            mesh_synth, network.stack_name, propagation["Properties"]["RouteTableIds"]
        )

        assert _resources(template, "AWS::EC2::VPNConnection") == {}
        assert tables == _private_route_tables(mesh_synth, eks)


def test_every_private_route_table_of_both_vpcs_routes_the_peer_cidr_over_the_peering(
    mesh_synth: MeshSynth,
) -> None:
    config = mesh_synth.config
    assert mesh_synth.stacks.peerings is not None
    name = mesh_synth.stacks.peerings.stack_name
    template = mesh_synth.templates[name]
    routes = _resources(template, "AWS::EC2::Route").values()
    (peering,) = _resources(template, "AWS::EC2::VPCPeeringConnection")
    found = {
        (
            _target(mesh_synth, name, r["Properties"]["RouteTableId"]),
            r["Properties"]["DestinationCidrBlock"],
        )
        for r in routes
        if r["Properties"]["VpcPeeringConnectionId"] == {"Ref": peering}
    }
    expected = {
        (table, str(cidr))
        for a, b in config.peerings()
        for here, there in ((a, b), (b, a))
        for table in _private_route_tables(mesh_synth, here)
        for cidr in config.cidrs_of(there)
    }

    assert found == expected
    assert len(routes) == len(expected)


def test_each_eks_cluster_has_one_access_entry_for_the_automation_role(
    mesh_synth: MeshSynth,
) -> None:
    stacks = mesh_synth.stacks
    home_cluster = stacks.cluster.stack_name
    (role,) = _resources(mesh_synth.templates[home_cluster], "AWS::IAM::Role").keys() & {
        k for k in mesh_synth.templates[home_cluster]["Resources"] if k.startswith("ReconcilerRole")
    }
    for cluster in stacks.clusters.values():
        entries = [
            e
            for e in _resources(
                mesh_synth.templates[cluster.stack_name], "AWS::EKS::AccessEntry"
            ).values()
            if e["Properties"].get("KubernetesGroups") == [RECONCILER_GROUP]
        ]

        assert len(entries) == 1, cluster.stack_name
        principal = entries[0]["Properties"]["PrincipalArn"]
        assert _target(mesh_synth, cluster.stack_name, principal) == (home_cluster, role)
    # Only the home cluster stack makes the role.
    for cluster in stacks.clusters.values():
        template = mesh_synth.templates[cluster.stack_name]
        has_role = any(
            k.startswith("ReconcilerRole") for k in _resources(template, "AWS::IAM::Role")
        )
        assert has_role == (cluster.stack_name == home_cluster)


def test_every_cluster_endpoint_is_public_and_private(mesh_synth: MeshSynth) -> None:
    for cluster in mesh_synth.stacks.clusters.values():
        template = mesh_synth.templates[cluster.stack_name]
        (eks,) = _resources(template, "AWS::EKS::Cluster").values()
        access = eks["Properties"]["ResourcesVpcConfig"]

        assert access["EndpointPublicAccess"] is True
        assert access["EndpointPrivateAccess"] is True


def test_the_automation_runs_in_the_home_vpc_and_may_describe_every_cluster(
    mesh_synth: MeshSynth,
) -> None:
    config = mesh_synth.config
    automation = _automation(mesh_synth)
    name = mesh_synth.stacks.automation.stack_name
    (policy,) = [
        r
        for k, r in _resources(automation, "AWS::IAM::Policy").items()
        if k.startswith("Reconciler")
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    home_vpc = {
        (mesh_synth.stacks.network.stack_name, k)
        for k in _resources(
            mesh_synth.templates[mesh_synth.stacks.network.stack_name], "AWS::EC2::VPC"
        )
    }
    described = statements["ReadCluster"]["Resource"]

    for sid in ("CreateLambdaEnisInTheFederationSubnets", "ManageLambdaEnisInTheFederationVpc"):
        vpc_arn = statements[sid]["Condition"]["ArnEquals"]["ec2:Vpc"]
        (vpc_id,) = [p for p in vpc_arn["Fn::Join"][1] if isinstance(p, dict) and "Ref" not in p]
        assert {_target(mesh_synth, name, vpc_id)} == home_vpc
    assert len(described) == len(config.eks_clusters())
    for cluster in config.eks_clusters():
        assert any(cluster.cluster_name in str(arn) for arn in described)
    for function in _resources(automation, "AWS::Lambda::Function").values():
        subnets = function["Properties"].get("VpcConfig", {}).get("SubnetIds", [])
        for subnet in subnets:
            assert _target(mesh_synth, name, subnet)[0] == mesh_synth.stacks.network.stack_name
    assert home_network(config) == config.eks_clusters()[0].name


def test_two_tunnel_alarms_per_vpn_all_matched_by_the_tunnel_state_rule(
    mesh_synth: MeshSynth,
) -> None:
    automation = _automation(mesh_synth)
    name = mesh_synth.stacks.automation.stack_name
    rules = {
        r["Properties"]["Name"]: r for r in _resources(automation, "AWS::Events::Rule").values()
    }
    tunnel_rule = rules[f"{mesh_synth.config.name}-tunnel-state"]
    (prefix,) = tunnel_rule["Properties"]["EventPattern"]["detail"]["alarmName"]
    alarms = [
        a
        for a in _resources(automation, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "TunnelState"
    ]
    per_vpn = Counter(
        _target(mesh_synth, name, d["Value"])
        for a in alarms
        for d in a["Properties"]["Dimensions"]
        if d["Name"] == "VpnId"
    )

    assert per_vpn == dict.fromkeys(_vpn_connections(mesh_synth), 2)
    for alarm in alarms:
        assert alarm["Properties"]["AlarmName"].startswith(prefix["prefix"])


def test_the_route_change_rule_covers_every_vpn_vgw_and_route_table(
    mesh_synth: MeshSynth,
) -> None:
    automation = _automation(mesh_synth)
    name = mesh_synth.stacks.automation.stack_name
    (rule,) = [
        r
        for r in _resources(automation, "AWS::Events::Rule").values()
        if r["Properties"]["Name"] == f"{mesh_synth.config.name}-route-change"
    ]
    narrowed: dict[str, set[Target]] = {}
    for alternative in rule["Properties"]["EventPattern"]["detail"]["$or"]:
        for key, ids in alternative.get("requestParameters", {}).items():
            narrowed.setdefault(key, set()).update(_targets(mesh_synth, name, ids))
    networks = mesh_synth.stacks.networks.values()

    def every(kind: str) -> set[Target]:
        return {
            (n.stack_name, k)
            for n in networks
            for k in _resources(mesh_synth.templates[n.stack_name], kind)
        }

    assert narrowed["vpnConnectionId"] == set(_vpn_connections(mesh_synth))
    assert narrowed["gatewayId"] == every("AWS::EC2::VPNGateway")
    assert narrowed["routeTableId"] == every("AWS::EC2::RouteTable")
    assert narrowed["vpcId"] == every("AWS::EC2::VPC")


def test_each_site_has_a_kubeconfig_secret_the_lambdas_may_read(mesh_synth: MeshSynth) -> None:
    automation = _automation(mesh_synth)
    secrets = _resources(automation, "AWS::SecretsManager::Secret")
    (policy,) = [
        r
        for k, r in _resources(automation, "AWS::IAM::Policy").items()
        if k.startswith("Reconciler")
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    readable = {r["Ref"] for r in statements["ReadOnpremKubeconfig"]["Resource"]}

    names = sorted(s["Properties"]["Name"] for s in secrets.values())
    assert names == sorted(s.credentials_secret for s in mesh_synth.config.sites())
    assert readable == set(secrets)


def test_worker_groups_admit_their_sites_and_peered_vpcs(mesh_synth: MeshSynth) -> None:
    config = mesh_synth.config
    for eks, network in mesh_synth.stacks.networks.items():
        groups = _resources(mesh_synth.templates[network.stack_name], "AWS::EC2::SecurityGroup")
        (worker,) = [g for k, g in groups.items() if k.startswith("WorkerSecurityGroup")]
        admitted = {r["CidrIp"] for r in worker["Properties"]["SecurityGroupIngress"]}
        expected = {
            str(c) for site in config.sites_of(eks) for c in (*site.host_cidrs, *site.pod_cidrs)
        } | {str(cidr) for _, cidr in config.peering_routes(eks)}

        assert admitted == expected


def test_site_and_peering_stacks_come_after_the_networks_and_the_automation_last(
    mesh_synth: MeshSynth,
) -> None:
    stacks = mesh_synth.stacks
    networks = {n.stack_name for n in stacks.networks.values()}
    assert stacks.peerings is not None

    for stack in (*stacks.sites.values(), stacks.peerings):
        assert {s.stack_name for s in stack.dependencies} <= networks
    for network in stacks.networks.values():
        assert network.dependencies == []
    everything_else = {s.stack_name for s in stacks.all()} - {
        stacks.automation.stack_name,
        *(c.stack_name for c in stacks.calicos.values()),
        stacks.peerings.stack_name,
    }
    assert {s.stack_name for s in stacks.automation.dependencies} == everything_else


def test_cfn_lint_reports_no_errors_in_any_mesh_template(mesh_synth: MeshSynth) -> None:
    errors = [
        f"{name}: {m.rule.id} {m.message} ({m.path})"
        for name in mesh_synth.templates
        for m in lint_file(
            mesh_synth.outdir / f"{name}.template.json",
            config=ManualArgs(regions=[mesh_synth.config.aws.region]),
        )
        if m.rule.id.startswith("E")
    ]

    assert errors == []


def test_a_migrated_two_cluster_file_keeps_the_two_cluster_stacks() -> None:
    # Given today's example written in the clusters: form
    legacy = parse_mesh(yaml.safe_load(EXAMPLE_CONFIG.read_text()))
    migrated = parse_mesh(yaml.safe_load(migrate(yaml.safe_load(EXAMPLE_CONFIG.read_text()))))

    # Then both deploy the same stacks, the VPN still in the network stack
    for config in (legacy, migrated):
        assert two_cluster_layout(config)
        assert stack_prefix(config, home_network(config)) == config.name


def test_the_mesh_synth_passes_cdk_nag_with_every_finding_acknowledged(
    mesh_synth: MeshSynth,
) -> None:
    # The synth ran with AwsSolutionsChecks and would have raised on a finding.
    report = mesh_synth.outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin["violations"]
