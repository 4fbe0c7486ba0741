"""The EKS cluster: AWS VPC CNI with external SNAT, Calico Enterprise in policy-only mode.

- EKS (``aws_eks_v2``, native ``AWS::EKS::Cluster``, access entries) in the private subnets,
  with a managed node group whose launch template adds the worker security group.
- The ``vpc-cni`` managed add-on with ``AWS_VPC_K8S_CNI_EXTERNALSNAT=true`` in place before
  any node starts (the node group depends on it), so pods keep their own addresses towards
  the VPN from the first boot (invariant 2, "snat").
- The reconciler role (the automation Lambdas run as it) with an access entry mapped to the
  Kubernetes group ``fedkeeper-reconciler``, bound to narrow RBAC (invariants 2-4 on EKS).
- Calico Enterprise through the tigera-operator Helm chart: ``kubernetesProvider: EKS``,
  ``cni: AmazonVPC``, no IP pools, no BGP.
"""

from __future__ import annotations

import json
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.lambda_layer_kubectl_v33 import KubectlV33Layer
from constructs import Construct

from fedkeeper.config import FederationConfig
from fedkeeper.rbac import RECONCILER_GROUP, eks_reconciler_objects
from stacks.compliance import acknowledge
from stacks.network import PRIVATE, NetworkStack

VPC_CNI_CONFIGURATION = {"env": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}}
DEFAULT_CHART_REPOSITORY = "https://downloads.tigera.io/ee/charts"
CALICO_NAMESPACE = "tigera-operator"


class ClusterStack(cdk.Stack):
    """EKS with the vpc-cni add-on, the reconciler's access, and Calico policy-only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FederationConfig,
        network: NetworkStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        eks_config = config.eks

        secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in {eks_config.cluster_name}",
            enable_key_rotation=True,
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
            endpoint_access=eks.EndpointAccess.PUBLIC_AND_PRIVATE,
            cluster_logging=list(eks.ClusterLoggingTypes),
            secrets_encryption_key=secrets_key,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV33Layer(self, "KubectlLayer"),
            ),
        )
        acknowledge(
            cast(cdk.CfnResource, self.cluster.node.default_child),
            "AwsSolutions-EKS1",
            reason="Operators run kubectl from outside the VPC; every request is authenticated "
            "by IAM and authorised by access entries. Inside the VPC (the Lambdas, the "
            "kubectl provider) the endpoint resolves to its private addresses.",
        )

        self.vpc_cni_addon = eks.CfnAddon(
            self,
            "VpcCniAddon",
            cluster_name=self.cluster.cluster_name,
            addon_name="vpc-cni",
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
            # The cluster bootstraps a self-managed aws-node; the add-on takes it over.
            resolve_conflicts="OVERWRITE",
        )

        self.nodegroup = self._add_nodegroup(config, network)
        # External SNAT is configured before the first node (and its pods) starts.
        self.nodegroup.node.add_dependency(self.vpc_cni_addon)

        self.reconciler_role = iam.Role(
            self,
            "ReconcilerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="fedkeeper automation Lambdas; permissions are attached by the "
            "automation stack, Kubernetes access by the access entry",
        )
        eks.CfnAccessEntry(
            self,
            "ReconcilerAccessEntry",
            cluster_name=self.cluster.cluster_name,
            principal_arn=self.reconciler_role.role_arn,
            kubernetes_groups=[RECONCILER_GROUP],
            type="STANDARD",
        )
        self.cluster.add_manifest("ReconcilerRbac", *reconciler_rbac(config))

        self.calico = self.cluster.add_helm_chart(
            "CalicoEnterprise",
            chart="tigera-operator",
            repository=getattr(eks_config.calico, "chart_repository", None)
            or DEFAULT_CHART_REPOSITORY,
            version=eks_config.calico.chart_version,
            release="calico-enterprise",
            namespace=CALICO_NAMESPACE,
            create_namespace=True,
            values=calico_values(config),
        )
        # The operator needs nodes to run on; installing earlier only stalls the release.
        self.calico.node.add_dependency(self.nodegroup)

        self._acknowledge_cdk_managed_findings()

        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        cdk.CfnOutput(self, "ReconcilerRoleArn", value=self.reconciler_role.role_arn)
        cdk.CfnOutput(
            self,
            "CalicoLicenseSecret",
            value=eks_config.calico.license_secret_name,
            description="Secrets Manager secret whose LicenseKey manifest you apply once "
            "(docs/DEPLOY.md)",
        )

    def _acknowledge_cdk_managed_findings(self) -> None:
        """cdk-nag findings on roles and functions that aws_eks_v2 creates and owns."""
        managed = "Policy::arn:<AWS::Partition>:iam::aws:policy/"
        acknowledge(
            self.cluster.role,
            f"AwsSolutions-IAM4[{managed}AmazonEKSClusterPolicy]",
            "The EKS cluster service role needs exactly AWS's cluster policy, which AWS keeps "
            "current with the control plane's needs.",
        )
        node_role = self.nodegroup.role
        for policy, why in (
            ("AmazonEKSWorkerNodePolicy", "lets nodes join and describe the cluster"),
            ("AmazonEC2ContainerRegistryReadOnly", "pulls the EKS add-on images from ECR"),
            (
                "AmazonEKS_CNI_Policy",
                "lets the vpc-cni add-on (aws-node) attach ENIs and addresses for pods",
            ),
        ):
            acknowledge(
                node_role,
                f"AwsSolutions-IAM4[{managed}{policy}]",
                f"Required by EKS managed nodes: {why}; AWS maintains the policy.",
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
        node_config = config.eks.node_group
        instance_types = [ec2.InstanceType(t) for t in node_config.instance_types]
        launch_template = ec2.LaunchTemplate(
            self,
            "WorkerLaunchTemplate",
            # With a launch template EKS no longer adds the cluster security group itself.
            security_group=network.worker_security_group,
            require_imdsv2=True,
            http_put_response_hop_limit=2,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        20, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        launch_template.add_security_group(self.cluster.cluster_security_group)
        arm = instance_types[0].architecture == ec2.InstanceArchitecture.ARM_64
        return self.cluster.add_nodegroup_capacity(
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
            launch_template_spec=eks.LaunchTemplateSpec(
                id=launch_template.launch_template_id or "",
                version=launch_template.latest_version_number,
            ),
        )


def calico_values(config: FederationConfig) -> dict[str, Any]:
    """tigera-operator chart values: Calico Enterprise in policy-only mode on EKS.

    Neither the pull secret nor the licence is in the template: the Installation names the
    pull Secret the operator expects in ``tigera-operator``, and the LicenseKey manifest is
    applied from Secrets Manager (``eks.calico.license_secret_name``; docs/DEPLOY.md).
    """
    calico = config.eks.calico
    return {
        "installation": {
            "enabled": True,
            "kubernetesProvider": "EKS",
            "cni": {"type": "AmazonVPC"},
            # Pods get VPC addresses from the AWS VPC CNI: no Calico IP pools, no BGP.
            "calicoNetwork": {"bgp": "Disabled", "ipPools": []},
            "registry": calico.registry,
            "imagePullSecrets": [{"name": calico.pull_secret_name}],
        },
        "tigeraOperator": {"registry": calico.registry.rstrip("/")},
    }


def reconciler_rbac(config: FederationConfig) -> list[dict[str, Any]]:
    """The reconciler group's RBAC on EKS: :func:`fedkeeper.rbac.eks_reconciler_objects`.

    The one source the on-prem bootstrap and the sandbox use too: least privilege, holding
    every permission it grants, no ``bind``/``escalate``/``*`` (see :mod:`fedkeeper.rbac`).
    """
    return eks_reconciler_objects(config)
