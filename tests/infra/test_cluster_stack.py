"""The cluster stack: EKS, the vpc-cni add-on, the reconciler's access and RBAC, Calico."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from fedkeeper.calico_install import INSTALLER_GROUP
from fedkeeper.rbac import RECONCILER_GROUP
from stacks.cluster import OPERATOR_NAMESPACES
from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _one(synth: Synth, resource_type: str, props: Any = None) -> tuple[str, dict[str, Any]]:
    found = synth.cluster.find_resources(
        resource_type, {"Properties": props} if props is not None else None
    )
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _manifest_objects(synth: Synth) -> list[dict[str, Any]]:
    """The reconciler's RBAC both stacks apply: the cluster stack's, then the calico stack's
    (not the calico installer's RBAC, nor the log-storage StorageClass)."""
    objects: list[dict[str, Any]] = []
    for template in (synth.cluster, synth.calico):
        for resource in template.find_resources("Custom::AWSCDK-EKS-KubernetesResource").values():
            objects += json.loads(resource["Properties"]["Manifest"])
    return [
        o
        for o in objects
        if o["kind"] != "StorageClass" and o["metadata"].get("name") != INSTALLER_GROUP
    ]


def _object(synth: Synth, kind: str) -> dict[str, Any]:
    (obj,) = [o for o in _manifest_objects(synth) if o["kind"] == kind]
    return obj


def test_eks_cluster_runs_the_configured_version_in_the_private_subnets(synth: Synth) -> None:
    eks = synth.config.sole_eks()
    _, cluster = _one(synth, "AWS::EKS::Cluster")
    props = cluster["Properties"]

    assert props["Name"] == eks.cluster_name
    assert props["Version"] == eks.kubernetes_version
    assert props["AccessConfig"]["AuthenticationMode"] == "API"
    subnets = props["ResourcesVpcConfig"]["SubnetIds"]
    assert len(subnets) == synth.config.sole_eks().network.az_count
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
    node_config = synth.config.sole_eks().node_group
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

    watch = {"list", "watch"}  # by name, for the watch function
    for kind in ("clusterroles", "clusterrolebindings"):
        verbs = _verbs(rules, "rbac.authorization.k8s.io", kind)
        # A binding's roleRef cannot change: one bound elsewhere is deleted and re-created.
        again = {"delete"} if kind == "clusterrolebindings" else set()
        assert verbs == {"create", "get", "patch"} | watch | again
    named = [r for r in rules if "patch" in r["verbs"] and "clusterroles" in r["resources"]]
    assert [r["resourceNames"] for r in named] == [[remote]]
    assert _verbs(rules, calico, "remoteclusterconfigurations") == {
        "list",
        "create",
        "patch",
        "delete",
        "watch",
    }
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
            "verbs": ["get", "patch", "list", "watch"],
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
    defined = reconciler_objects(synth.config, "eks", subject)
    # Everything rbac.py defines, except the Tigera operator's own namespaces.
    assert sorted(map(json.dumps, deployed)) == sorted(
        json.dumps(o)
        for o in defined
        if not (o["kind"] == "Namespace" and o["metadata"]["name"] in OPERATOR_NAMESPACES)
    )


def test_no_stack_declares_a_namespace_the_tigera_operator_owns(synth: Synth) -> None:
    # cdk destroy deletes what a manifest declares: calico-system is Calico's.
    declared = {o["metadata"]["name"] for o in _manifest_objects(synth) if o["kind"] == "Namespace"}

    assert declared & OPERATOR_NAMESPACES == set()
    assert "calico-system" in OPERATOR_NAMESPACES


def test_the_cluster_runs_the_calendars_default_with_a_matching_kubectl_layer(
    synth: Synth,
) -> None:
    from fedkeeper.eks_versions import DEFAULT_VERSION, KUBECTL_LAYER_VERSION

    _, cluster = _one(synth, "AWS::EKS::Cluster")
    layers = synth.cluster.find_resources("AWS::Lambda::LayerVersion")
    kubectl = [
        layer["Properties"]["Description"]
        for layer in layers.values()
        if "/opt/kubectl/kubectl" in layer["Properties"].get("Description", "")
    ]

    assert cluster["Properties"]["Version"] == DEFAULT_VERSION
    assert len(kubectl) == 1
    assert f"/opt/kubectl/kubectl {KUBECTL_LAYER_VERSION}." in kubectl[0]


# --- nodes: instance metadata, node role, the VPC CNI's own identity -----------------------


def _managed_policy_names(role: dict[str, Any]) -> set[str]:
    arns = role["Properties"].get("ManagedPolicyArns", [])
    return {json.dumps(arn).rsplit(":policy/", 1)[1].split('"')[0] for arn in arns}


def test_nodes_require_imdsv2_with_a_hop_limit_of_one(synth: Synth) -> None:
    _, template = _one(synth, "AWS::EC2::LaunchTemplate")
    options = template["Properties"]["LaunchTemplateData"]["MetadataOptions"]

    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == 1


def test_the_node_role_keeps_only_what_nodes_need(synth: Synth) -> None:
    _, nodegroup = _one(synth, "AWS::EKS::Nodegroup")
    role_id = nodegroup["Properties"]["NodeRole"]["Fn::GetAtt"][0]
    role = synth.cluster.find_resources("AWS::IAM::Role")[role_id]

    assert _managed_policy_names(role) == {
        "AmazonEKSWorkerNodePolicy",
        "AmazonEC2ContainerRegistryReadOnly",
    }
    assert not synth.cluster.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )


def test_the_vpc_cni_gets_its_permissions_on_aws_node_through_pod_identity(
    synth: Synth,
) -> None:
    agent_id, _ = _one(synth, "AWS::EKS::Addon", {"AddonName": "eks-pod-identity-agent"})
    _, cni = _one(synth, "AWS::EKS::Addon", {"AddonName": "vpc-cni"})
    (association,) = cni["Properties"]["PodIdentityAssociations"]
    role_id = association["RoleArn"]["Fn::GetAtt"][0]
    role = synth.cluster.find_resources("AWS::IAM::Role")[role_id]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert association["ServiceAccount"] == "aws-node"
    assert agent_id in cni["DependsOn"]
    assert _managed_policy_names(role) == {"AmazonEKS_CNI_Policy"}
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    name = synth.config.sole_eks().cluster_name
    assert json.dumps(trust["Condition"]["ArnEquals"]["aws:SourceArn"]).endswith(
        f':cluster/{name}"]]}}'
    )


# --- managed add-ons, log storage, upgrades ----------------------------------------------------


def test_kube_proxy_coredns_vpc_cni_and_ebs_csi_are_managed_add_ons(synth: Synth) -> None:
    addons = {
        a["Properties"]["AddonName"]: a
        for a in synth.cluster.find_resources("AWS::EKS::Addon").values()
    }

    assert set(addons) == {
        "eks-pod-identity-agent",
        "vpc-cni",
        "kube-proxy",
        "coredns",
        "aws-ebs-csi-driver",
    }
    assert all(a["Properties"]["ResolveConflicts"] == "OVERWRITE" for a in addons.values())
    ebs = addons["aws-ebs-csi-driver"]["Properties"]["PodIdentityAssociations"]
    assert [p["ServiceAccount"] for p in ebs] == ["ebs-csi-controller-sa"]


def test_coredns_and_the_ebs_driver_wait_for_the_nodes_kube_proxy_does_not(synth: Synth) -> None:
    node_id, nodegroup = _one(synth, "AWS::EKS::Nodegroup")
    ids = {
        a["Properties"]["AddonName"]: k
        for k, a in synth.cluster.find_resources("AWS::EKS::Addon").items()
    }
    addons = synth.cluster.find_resources("AWS::EKS::Addon")

    assert ids["kube-proxy"] in nodegroup["DependsOn"]
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert node_id in addons[ids[name]]["DependsOn"]


def test_the_nodes_follow_the_control_planes_version(synth: Synth) -> None:
    _, nodegroup = _one(synth, "AWS::EKS::Nodegroup")

    assert nodegroup["Properties"]["Version"] == synth.config.sole_eks().kubernetes_version


def test_log_storage_gets_the_tigera_elasticsearch_storage_class(synth: Synth) -> None:
    classes = [
        o
        for r in synth.cluster.find_resources("Custom::AWSCDK-EKS-KubernetesResource").values()
        for o in json.loads(r["Properties"]["Manifest"])
        if o["kind"] == "StorageClass"
    ]

    assert synth.config.sole_eks().calico.log_storage
    assert [c["metadata"]["name"] for c in classes] == ["tigera-elasticsearch"]
    assert classes[0]["provisioner"] == "ebs.csi.aws.com"
    assert classes[0]["volumeBindingMode"] == "WaitForFirstConsumer"
    assert classes[0]["parameters"]["encrypted"] == "true"
