"""The cluster stack: EKS, the vpc-cni add-on, the reconciler's access and RBAC, Calico."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from fedkeeper.rbac import RECONCILER_GROUP
from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _one(synth: Synth, resource_type: str, props: Any = None) -> tuple[str, dict[str, Any]]:
    found = synth.cluster.find_resources(
        resource_type, {"Properties": props} if props is not None else None
    )
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _manifest_objects(synth: Synth) -> list[dict[str, Any]]:
    _, resource = _one(synth, "Custom::AWSCDK-EKS-KubernetesResource")
    objects: list[dict[str, Any]] = json.loads(resource["Properties"]["Manifest"])
    return objects


def _object(synth: Synth, kind: str) -> dict[str, Any]:
    (obj,) = [o for o in _manifest_objects(synth) if o["kind"] == kind]
    return obj


def _helm_values(synth: Synth) -> dict[str, Any]:
    _, chart = _one(synth, "Custom::AWSCDK-EKS-HelmChart")
    values: dict[str, Any] = json.loads(chart["Properties"]["Values"])
    return values


def test_eks_cluster_runs_the_configured_version_in_the_private_subnets(synth: Synth) -> None:
    eks = synth.config.eks
    _, cluster = _one(synth, "AWS::EKS::Cluster")
    props = cluster["Properties"]

    assert props["Name"] == eks.cluster_name
    assert props["Version"] == eks.kubernetes_version
    assert props["AccessConfig"]["AuthenticationMode"] == "API"
    subnets = props["ResourcesVpcConfig"]["SubnetIds"]
    assert len(subnets) == synth.config.aws.vpc.az_count
    assert all("privateSubnet" in s["Fn::GetStackOutput"]["OutputName"] for s in subnets)


def test_eks_cluster_logs_the_control_plane_and_encrypts_secrets(synth: Synth) -> None:
    _, cluster = _one(synth, "AWS::EKS::Cluster")
    props = cluster["Properties"]

    logged = {t["Type"] for t in props["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert logged == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    assert props["EncryptionConfig"][0]["Resources"] == ["secrets"]


def test_vpc_cni_addon_turns_external_snat_on(synth: Synth) -> None:
    _, addon = _one(synth, "AWS::EKS::Addon", {"AddonName": "vpc-cni"})
    props = addon["Properties"]

    assert json.loads(props["ConfigurationValues"]) == {
        "env": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}
    }
    assert props["ResolveConflicts"] == "OVERWRITE"


def test_node_group_starts_only_after_the_vpc_cni_addon(synth: Synth) -> None:
    addon_id, _ = _one(synth, "AWS::EKS::Addon", {"AddonName": "vpc-cni"})
    _, nodegroup = _one(synth, "AWS::EKS::Nodegroup")

    assert addon_id in nodegroup["DependsOn"]


def test_node_group_follows_the_config_in_the_private_subnets(synth: Synth) -> None:
    node_config = synth.config.eks.node_group
    _, nodegroup = _one(synth, "AWS::EKS::Nodegroup")
    props = nodegroup["Properties"]

    assert props["NodegroupName"] == node_config.name
    assert props["InstanceTypes"] == node_config.instance_types
    assert props["ScalingConfig"] == {
        "MinSize": node_config.min_size,
        "DesiredSize": node_config.desired_size,
        "MaxSize": node_config.max_size,
    }
    assert all("privateSubnet" in s["Fn::GetStackOutput"]["OutputName"] for s in props["Subnets"])


def test_nodes_get_the_worker_and_cluster_security_groups_and_imdsv2(synth: Synth) -> None:
    template_id, template = _one(synth, "AWS::EC2::LaunchTemplate")
    _, nodegroup = _one(synth, "AWS::EKS::Nodegroup")
    data = template["Properties"]["LaunchTemplateData"]

    assert nodegroup["Properties"]["LaunchTemplate"]["Id"] == {"Ref": template_id}
    groups = data["SecurityGroupIds"]
    assert any(
        "WorkerSecurityGroup" in g.get("Fn::GetStackOutput", {}).get("OutputName", "")
        for g in groups
    )
    cluster_id, _ = _one(synth, "AWS::EKS::Cluster")
    assert {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]} in groups
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(b["Ebs"]["Encrypted"] for b in data["BlockDeviceMappings"])


def test_reconciler_role_is_for_lambda_and_maps_to_the_reconciler_group(synth: Synth) -> None:
    role_id, _ = _one(
        synth,
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})]
            },
            "Description": Match.string_like_regexp("fedkeeper"),
        },
    )

    synth.cluster.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "PrincipalArn": {"Fn::GetAtt": [role_id, "Arn"]},
            "KubernetesGroups": [RECONCILER_GROUP],
            "Type": "STANDARD",
            "AccessPolicies": Match.absent(),
        },
    )


def test_reconciler_group_is_bound_to_the_reconciler_cluster_role(synth: Synth) -> None:
    binding = _object(synth, "ClusterRoleBinding")

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "fedkeeper-reconciler",
    }
    assert binding["subjects"] == [
        {"kind": "Group", "name": RECONCILER_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
    ]


def _verbs(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _roles(synth: Synth) -> list[dict[str, Any]]:
    return [o for o in _manifest_objects(synth) if o["kind"] == "Role"]


def test_reconciler_rbac_grants_what_invariants_2_to_4_need(synth: Synth) -> None:
    rules = _object(synth, "ClusterRole")["rules"]
    calico = synth.config.federation.calico_api.group
    remote = synth.config.federation.remote_service_account.name

    for kind in ("clusterroles", "clusterrolebindings"):
        assert _verbs(rules, "rbac.authorization.k8s.io", kind) == {"create", "get", "patch"}
    named = [r for r in rules if "patch" in r["verbs"] and "clusterroles" in r["resources"]]
    assert [r["resourceNames"] for r in named] == [[remote]]
    assert _verbs(rules, calico, "remoteclusterconfigurations") == {"list", "create", "patch"}
    fed = synth.config.federation
    namespaces = {r["metadata"]["namespace"] for r in _roles(synth)}
    assert namespaces == {
        fed.access_secret_namespace,
        fed.remote_service_account.namespace,
        "calico-system",
        "kube-system",
    }
    [kube_system] = [r for r in _roles(synth) if r["metadata"]["namespace"] == "kube-system"]
    assert kube_system["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["daemonsets"],
            "verbs": ["get", "patch"],
            "resourceNames": ["aws-node"],  # no other DaemonSet may be read or patched
        }
    ]


def test_reconciler_holds_no_secret_access_cluster_wide(synth: Synth) -> None:
    rules = _object(synth, "ClusterRole")["rules"]
    assert _verbs(rules, "", "secrets") == set()


def test_reconciler_only_lists_calico_pools_on_eks(synth: Synth) -> None:
    rules = _object(synth, "ClusterRole")["rules"]
    calico = synth.config.federation.calico_api.group

    assert _verbs(rules, calico, "ippools") == {"list"}
    assert _verbs(rules, calico, "bgppeers") == set()
    assert _verbs(rules, calico, "kubecontrollersconfigurations") == {"get"}


def test_reconciler_may_neither_bind_nor_escalate(synth: Synth) -> None:
    rules = _object(synth, "ClusterRole")["rules"] + [
        r for role in _roles(synth) for r in role["rules"]
    ]

    assert not [r for r in rules if {"bind", "escalate"} & set(r["verbs"])]


def test_reconciler_rbac_has_no_wildcards(synth: Synth) -> None:
    for obj in _manifest_objects(synth):
        for rule in obj.get("rules", []):
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert "*" not in rule["apiGroups"]


def test_reconciler_rbac_is_the_one_fedkeeper_rbac_defines(synth: Synth) -> None:
    from fedkeeper.rbac import reconciler_objects

    subject = {"kind": "Group", "name": RECONCILER_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
    deployed = _manifest_objects(synth)
    for obj in deployed:  # CDK's own prune label aside
        labels = obj["metadata"].get("labels", {})
        for key in [k for k in labels if k.startswith("aws.cdk.eks/prune-")]:
            del labels[key]
        if not labels:
            obj["metadata"].pop("labels", None)
    assert deployed == reconciler_objects(synth.config, "eks", subject)


def test_calico_enterprise_comes_from_the_tigera_operator_chart(synth: Synth) -> None:
    calico = synth.config.eks.calico
    _, chart = _one(synth, "Custom::AWSCDK-EKS-HelmChart")
    props = chart["Properties"]

    assert props["Chart"] == "tigera-operator"
    assert props["Repository"] == "https://downloads.tigera.io/ee/charts"
    assert props["Version"] == calico.chart_version
    assert props["Namespace"] == "tigera-operator"
    assert props["CreateNamespace"] is True


def test_calico_runs_policy_only_on_the_aws_vpc_cni_without_ip_pools(synth: Synth) -> None:
    installation = _helm_values(synth)["installation"]

    assert installation["kubernetesProvider"] == "EKS"
    assert installation["cni"] == {"type": "AmazonVPC"}
    assert installation["calicoNetwork"].get("ipPools", []) == []
    assert installation["calicoNetwork"]["bgp"] == "Disabled"


def test_calico_values_name_the_registry_and_pull_secret_but_hold_no_credentials(
    synth: Synth,
) -> None:
    calico = synth.config.eks.calico
    values = _helm_values(synth)

    assert values["installation"]["registry"] == calico.registry
    assert values["installation"]["imagePullSecrets"] == [{"name": calico.pull_secret_name}]
    # The chart's map form (name -> dockerconfigjson) would put credentials in the template.
    assert "imagePullSecrets" not in values
    assert "licenseKeyContent" not in values


def test_calico_is_installed_after_the_node_group(synth: Synth) -> None:
    nodegroup_id, _ = _one(synth, "AWS::EKS::Nodegroup")
    _, chart = _one(synth, "Custom::AWSCDK-EKS-HelmChart")

    assert nodegroup_id in chart["DependsOn"]


def test_manifests_and_charts_go_through_the_kubectl_provider_with_its_layer(
    synth: Synth,
) -> None:
    layers = synth.cluster.find_resources(
        "AWS::Lambda::LayerVersion",
        {"Properties": {"Description": Match.string_like_regexp("kubectl")}},
    )
    assert layers
    for resource_type in ("Custom::AWSCDK-EKS-KubernetesResource", "Custom::AWSCDK-EKS-HelmChart"):
        synth.cluster.has_resource_properties(
            resource_type,
            {"ServiceToken": {"Fn::GetAtt": [Match.string_like_regexp("KubectlProvider"), "Arn"]}},
        )
