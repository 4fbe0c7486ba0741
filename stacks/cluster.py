"""The EKS cluster: AWS VPC CNI with external SNAT, Calico Enterprise in policy-only mode.

- EKS (``aws_eks_v2``, native ``AWS::EKS::Cluster``, access entries) in the private subnets,
  with a managed node group whose launch template adds the worker security group and
  requires IMDSv2 with one hop; the node role holds only the worker and ECR policies, the
  VPC CNI's policy goes to the ``aws-node`` service account through EKS Pod Identity.
- The ``vpc-cni`` managed add-on with ``AWS_VPC_K8S_CNI_EXTERNALSNAT=true`` in place before
  any node starts (the node group depends on it), so pods keep their own addresses towards
  the VPN from the first boot (invariant 2, "snat"). ``kube-proxy`` is a managed add-on too
  (before the nodes), ``coredns`` and the EBS CSI driver after them (their pods need nodes);
  add-on versions, the control plane and the node group move together through the config.
- For Calico Enterprise's log storage: the EBS CSI driver (its own role through EKS Pod
  Identity) and the ``tigera-elasticsearch`` StorageClass the operator's LogStorage uses.
- The reconciler role (the automation Lambdas run as it) with an access entry mapped to the
  Kubernetes group ``fedkeeper-reconciler``, bound to narrow RBAC (invariants 2-4 on EKS).
- Calico Enterprise is installed by the calico stack (``stacks.calico``), after this one.
"""

from __future__ import annotations

import json
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

# The kubectl/helm layer of fedkeeper.eks_versions.KUBECTL_LAYER_VERSION (1.36).
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer
from constructs import Construct

from fedkeeper.config import EksConfig, FederationConfig
from fedkeeper.rbac import RECONCILER_GROUP, eks_reconciler_objects
from stacks.compliance import acknowledge
from stacks.network import LOG_RETENTION, PRIVATE, NetworkStack

VPC_CNI_CONFIGURATION = {"env": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}}
# Namespaces the Tigera operator creates and owns: fedkeeper never declares them.
OPERATOR_NAMESPACES = frozenset({"calico-system", "tigera-operator"})
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# The StorageClass the Tigera operator's LogStorage asks for by default (tigera/operator
# pkg/controller/logstorage/initializer: DefaultElasticsearchStorageClass).
LOG_STORAGE_CLASS = "tigera-elasticsearch"
# What the nodes themselves need: join the cluster, pull images from ECR. The VPC CNI's
# AmazonEKS_CNI_Policy goes to the aws-node service account instead (EKS Pod Identity).
NODE_MANAGED_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")


class ClusterStack(cdk.Stack):
    """EKS with the vpc-cni add-on, the reconciler's access, and Calico policy-only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FederationConfig,
        network: NetworkStack,
        reconciler_role: iam.IRole | None = None,
        **kwargs: Any,
    ) -> None:
        """``config`` is this cluster's view (:mod:`stacks.cluster_view`). The home cluster
        creates the reconciler role; every other cluster gets ``reconciler_role`` (the home
        cluster stack's) and only grants it an access entry."""
        super().__init__(scope, construct_id, **kwargs)
        eks_config = config.sole_eks()
        # The EKS cluster's own name, a literal (the automation's policy names it).
        self.cluster_name = eks_config.cluster_name

        secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in {eks_config.cluster_name}",
            enable_key_rotation=True,
        )
        # EKS writes control-plane logs to this group; created here first so it has a
        # retention (EKS itself would create it keeping logs forever).
        self.control_plane_logs = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=f"/aws/eks/{eks_config.cluster_name}/cluster",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=eks_config.cluster_name,
            version=eks.KubernetesVersion.of(eks_config.kubernetes_version),
            vpc=network.vpc,
            vpc_subnets=[PRIVATE],
            # Standard mode with a managed node group below; Auto Mode would own networking.
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            # Public too: operators run kubectl from outside the VPC, and in a mesh the
            # automation's Lambdas (in the home VPC) and the Typha of every other EKS cluster
            # reach this API server from another VPC, where its name resolves to the public
            # endpoint (the private one answers only inside this VPC; a peering does not carry
            # its DNS), through their own NAT gateways.
            endpoint_access=eks.EndpointAccess.PUBLIC_AND_PRIVATE,
            cluster_logging=list(eks.ClusterLoggingTypes),
            secrets_encryption_key=secrets_key,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV36Layer(self, "KubectlLayer"),
            ),
        )
        self.cluster.node.add_dependency(self.control_plane_logs)
        acknowledge(
            cast(cdk.CfnResource, self.cluster.node.default_child),
            "AwsSolutions-EKS1",
            reason="Operators run kubectl from outside the VPC; every request is authenticated "
            "by IAM and authorised by access entries. Inside the VPC (the Lambdas, the "
            "kubectl provider) the endpoint resolves to its private addresses.",
        )

        # The VPC CNI's AWS permissions belong to its own service account (aws-node), through
        # EKS Pod Identity, not to the node role that every pod reaching IMDS could use.
        self.pod_identity_agent = eks.CfnAddon(
            self,
            "PodIdentityAgentAddon",
            cluster_name=self.cluster.cluster_name,
            addon_name="eks-pod-identity-agent",
            addon_version=eks_config.addon_versions.get("eks-pod-identity-agent"),
            resolve_conflicts="OVERWRITE",
        )
        self.vpc_cni_role = self._pod_identity_role(
            "VpcCniRole",
            eks_config.cluster_name,
            "AmazonEKS_CNI_Policy",
            f"VPC CNI (kube-system/aws-node) of {eks_config.cluster_name}, via EKS Pod Identity",
        )
        self.vpc_cni_addon = eks.CfnAddon(
            self,
            "VpcCniAddon",
            cluster_name=self.cluster.cluster_name,
            addon_name="vpc-cni",
            addon_version=eks_config.addon_versions.get("vpc-cni"),
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
            # The cluster bootstraps a self-managed aws-node; the add-on takes it over.
            resolve_conflicts="OVERWRITE",
            pod_identity_associations=[
                eks.CfnAddon.PodIdentityAssociationProperty(
                    role_arn=self.vpc_cni_role.role_arn, service_account=VPC_CNI_SERVICE_ACCOUNT
                )
            ],
        )
        self.vpc_cni_addon.add_resource_dependency(self.pod_identity_agent)
        # The cluster bootstraps a self-managed kube-proxy and CoreDNS; as managed add-ons
        # they follow eks.addon_versions instead of staying behind a version bump.
        self.kube_proxy_addon = self._addon("KubeProxyAddon", "kube-proxy", eks_config)

        self.nodegroup = self._add_nodegroup(config, network)
        # External SNAT is configured before the first node (and its pods) starts.
        self.nodegroup.node.add_dependency(self.vpc_cni_addon)
        self.nodegroup.node.add_dependency(self.kube_proxy_addon)
        # Deployments: EKS reports them healthy only once nodes run their pods.
        self.coredns_addon = self._addon("CoreDnsAddon", "coredns", eks_config)
        self.coredns_addon.node.add_dependency(self.nodegroup)
        self.ebs_csi_role = self._pod_identity_role(
            "EbsCsiRole",
            eks_config.cluster_name,
            "service-role/AmazonEBSCSIDriverPolicy",
            f"EBS CSI driver (kube-system/{EBS_CSI_SERVICE_ACCOUNT}) of {eks_config.cluster_name}",
        )
        self.ebs_csi_addon = self._addon(
            "EbsCsiAddon",
            "aws-ebs-csi-driver",
            eks_config,
            pod_identity=(self.ebs_csi_role, EBS_CSI_SERVICE_ACCOUNT),
        )
        self.ebs_csi_addon.node.add_dependency(self.nodegroup)
        self.ebs_csi_addon.add_resource_dependency(self.pod_identity_agent)
        if config.sole_eks().calico.log_storage:
            storage = self.cluster.add_manifest("LogStorageClass", log_storage_class())
            storage.node.add_dependency(self.ebs_csi_addon)

        self.owns_reconciler_role = reconciler_role is None
        self.reconciler_role: iam.IRole = reconciler_role or iam.Role(
            self,
            "ReconcilerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="fedkeeper automation Lambdas; permissions are attached by the "
            "automation stack, Kubernetes access by the access entry",
        )
        # One access entry per EKS cluster for the one automation role.
        self.reconciler_access_entry = eks.CfnAccessEntry(
            self,
            "ReconcilerAccessEntry",
            cluster_name=self.cluster.cluster_name,
            principal_arn=self.reconciler_role.role_arn,
            kubernetes_groups=[RECONCILER_GROUP],
            type="STANDARD",
        )
        # Cluster-scoped RBAC and fedkeeper's own namespaces; the Roles inside the Tigera
        # operator's namespaces are applied by the calico stack once the operator made them.
        self.cluster.add_manifest("ReconcilerRbac", *cluster_rbac(config))

        self._acknowledge_cdk_managed_findings()

        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        if self.owns_reconciler_role:
            cdk.CfnOutput(self, "ReconcilerRoleArn", value=self.reconciler_role.role_arn)

    def _acknowledge_cdk_managed_findings(self) -> None:
        """cdk-nag findings on roles and functions that aws_eks_v2 creates and owns."""
        managed = "Policy::arn:<AWS::Partition>:iam::aws:policy/"
        acknowledge(
            self.cluster.role,
            f"AwsSolutions-IAM4[{managed}AmazonEKSClusterPolicy]",
            "The EKS cluster service role needs exactly AWS's cluster policy, which AWS keeps "
            "current with the control plane's needs.",
        )
        for policy, why in (
            ("AmazonEKSWorkerNodePolicy", "lets nodes join and describe the cluster"),
            ("AmazonEC2ContainerRegistryReadOnly", "pulls the EKS add-on images from ECR"),
        ):
            acknowledge(
                self.node_role,
                f"AwsSolutions-IAM4[{managed}{policy}]",
                f"Required by EKS managed nodes: {why}; AWS maintains the policy.",
            )
        acknowledge(
            self.vpc_cni_role,
            f"AwsSolutions-IAM4[{managed}AmazonEKS_CNI_Policy]",
            "The VPC CNI (aws-node, through EKS Pod Identity) attaches ENIs and addresses for "
            "pods; AWS maintains the policy for the CNI's needs.",
        )
        acknowledge(
            self.ebs_csi_role,
            f"AwsSolutions-IAM4[{managed}service-role/AmazonEBSCSIDriverPolicy]",
            "The EBS CSI driver (through EKS Pod Identity, its controller's service account "
            "only) creates, attaches and deletes the volumes of Calico Enterprise's log "
            "storage; AWS maintains the policy for the driver's needs.",
        )
        provider = self.cluster.kubectl_provider
        if provider is None:
            return
        handler = provider.node.find_child("Handler")
        has_ecr_public = next(c for c in handler.node.children if isinstance(c, cdk.CfnCondition))
        ecr_public = (
            'Policy::{"Fn::If":["'
            + self.resolve(has_ecr_public.logical_id)
            + '",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},'
            + '":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},'
            + '{"Ref":"AWS::NoValue"}]}'
        )
        kubectl_reason = (
            "CDK's kubectl provider (deploy-time only: applies the RBAC manifests and the "
            "Calico Helm release); its roles and runtime are managed by aws-cdk-lib."
        )
        for finding in (
            f"AwsSolutions-IAM4[{managed}service-role/AWSLambdaBasicExecutionRole]",
            f"AwsSolutions-IAM4[{managed}service-role/AWSLambdaVPCAccessExecutionRole]",
            f"AwsSolutions-IAM4[{managed}AmazonEC2ContainerRegistryReadOnly]",
            f"AwsSolutions-IAM4[{ecr_public}]",
            "AwsSolutions-L1",
            "AwsSolutions-IAM5[Resource::<"
            + self.resolve(cast(cdk.CfnResource, handler.node.default_child).logical_id)
            + ".Arn>:*]",
        ):
            acknowledge(provider, finding, kubectl_reason)

    def _add_nodegroup(self, config: FederationConfig, network: NetworkStack) -> eks.Nodegroup:
        node_config = config.sole_eks().node_group
        instance_types = [ec2.InstanceType(t) for t in node_config.instance_types]
        launch_template = ec2.LaunchTemplate(
            self,
            "WorkerLaunchTemplate",
            # With a launch template EKS no longer adds the cluster security group itself.
            security_group=network.worker_security_group,
            # IMDSv2 only, and one hop: pods in their own network namespace cannot reach the
            # node's instance metadata (and its role); host-network pods still can.
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        node_config.disk_size_gb,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                    ),
                )
            ],
        )
        launch_template.add_security_group(self.cluster.cluster_security_group)
        arm = instance_types[0].architecture == ec2.InstanceArchitecture.ARM_64
        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="EKS managed nodes: join the cluster and pull images (no CNI rights)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name)
                for name in NODE_MANAGED_POLICIES
            ],
        )
        nodegroup = self.cluster.add_nodegroup_capacity(
            "Workers",
            nodegroup_name=node_config.name,
            instance_types=instance_types,
            ami_type=eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
            if arm
            else eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            min_size=node_config.min_size,
            desired_size=node_config.desired_size,
            max_size=node_config.max_size,
            subnets=PRIVATE,
            node_role=self.node_role,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=launch_template.launch_template_id or "",
                version=launch_template.latest_version_number,
            ),
        )
        # The nodes follow the control plane's version in the same `cdk deploy` (a rolling
        # update of the group) instead of staying on the version they were created with.
        cfn_nodegroup = nodegroup.node.default_child
        assert isinstance(cfn_nodegroup, eks.CfnNodegroup)
        cfn_nodegroup.version = config.sole_eks().kubernetes_version
        return nodegroup

    def _addon(
        self,
        construct_id: str,
        name: str,
        eks_config: EksConfig,
        *,
        pod_identity: tuple[iam.Role, str] | None = None,
    ) -> eks.CfnAddon:
        """An EKS managed add-on at ``eks.addon_versions[name]`` (or EKS's default)."""
        associations = None
        if pod_identity is not None:
            role, service_account = pod_identity
            associations = [
                eks.CfnAddon.PodIdentityAssociationProperty(
                    role_arn=role.role_arn, service_account=service_account
                )
            ]
        return eks.CfnAddon(
            self,
            construct_id,
            cluster_name=self.cluster.cluster_name,
            addon_name=name,
            addon_version=eks_config.addon_versions.get(name),
            # The cluster bootstraps self-managed copies; the add-on takes them over.
            resolve_conflicts="OVERWRITE",
            pod_identity_associations=associations,
        )

    def _pod_identity_role(
        self, construct_id: str, cluster_name: str, managed_policy: str, description: str
    ) -> iam.Role:
        """A role EKS Pod Identity hands to one service account of this cluster only."""
        cluster_arn = self.format_arn(service="eks", resource="cluster", resource_name=cluster_name)
        principal = iam.ServicePrincipal("pods.eks.amazonaws.com").with_conditions(
            {
                "StringEquals": {"aws:SourceAccount": self.account},
                "ArnEquals": {"aws:SourceArn": cluster_arn},
            }
        )
        return iam.Role(
            self,
            construct_id,
            # Pod Identity assumes the role with session tags (sts:TagSession).
            assumed_by=iam.SessionTagsPrincipal(principal),
            description=description,
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(managed_policy)],
        )


def log_storage_class() -> dict[str, Any]:
    """The ``tigera-elasticsearch`` StorageClass: encrypted gp3 volumes from the EBS CSI driver.

    ``WaitForFirstConsumer`` puts each volume in the zone of the node that runs its pod;
    ``Retain`` keeps the logs' volume if the LogStorage is deleted (Tigera's guidance for log
    storage); volumes may grow when LogStorage asks for more.
    """
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOG_STORAGE_CLASS},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def reconciler_rbac(config: FederationConfig) -> list[dict[str, Any]]:
    """The reconciler group's RBAC on EKS: :func:`fedkeeper.rbac.eks_reconciler_objects`.

    The one source the on-prem bootstrap and the sandbox use too: least privilege, holding
    every permission it grants, no ``bind``/``escalate``/``*`` (see :mod:`fedkeeper.rbac`).
    """
    return eks_reconciler_objects(config)


def _in_operator_namespace(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata", {})
    if obj.get("kind") == "Namespace":
        return str(meta.get("name")) in OPERATOR_NAMESPACES
    return str(meta.get("namespace", "")) in OPERATOR_NAMESPACES


def cluster_rbac(config: FederationConfig) -> list[dict[str, Any]]:
    """What the cluster stack applies: cluster-scoped objects and fedkeeper's own namespaces."""
    return [o for o in reconciler_rbac(config) if not _in_operator_namespace(o)]


def operator_namespace_rbac(config: FederationConfig) -> list[dict[str, Any]]:
    """What the calico stack applies, once the operator made them: Roles and bindings there.

    The operator's Namespace objects are left out: declaring them would make ``cdk destroy``
    delete calico-system (and every Calico component in it).
    """
    return [
        o
        for o in reconciler_rbac(config)
        if _in_operator_namespace(o) and o.get("kind") != "Namespace"
    ]
