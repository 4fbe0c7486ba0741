"""Calico Enterprise on EKS, in its own stack after the cluster.

- The tigera-operator Helm chart (``eks.calico``): from Tigera's repository (or a mirror) at
  a validated version, or, air-gapped, from a local ``.tgz`` shipped as an S3 asset. Values
  put Calico in policy-only mode on the AWS VPC CNI and select the Calico Enterprise
  variant, for which the operator runs kube-controllers with the Federated Services
  Controller (tigera/operator ``pkg/render/kubecontrollers``: ``federatedservices`` is
  enabled for ``TigeraSecureEnterprise``).
- Before the chart, the installer (``lambdas/calico_install.py``, a custom resource with its
  own role, access entry and narrow RBAC) copies the registry credentials from Secrets
  Manager into the pull Secrets the operator reads, and releases operator objects an
  earlier failed install left Terminating; after it, once the Calico API server serves it,
  the licence. No secret value is in a template, an event or a log.
- The reconciler's Roles in the namespaces the operator owns (``calico-system``), applied
  once the operator has created them; the stack never declares those namespaces, so
  ``cdk destroy`` cannot delete them.
- Every wait ends at least 2 minutes inside its provider's limit, and every custom
  resource carries a ``ServiceTimeout``, so a failure reaches CloudFormation in minutes.

Why a stack of its own: a Helm release that fails (a pull secret not yet in place, a chart
version the mirror lacks) fails and rolls back only this stack. In the cluster stack it
would roll back, and so delete, the EKS cluster and its node group with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from fedkeeper.calico_install import INSTALLER_GROUP, installer_rbac
from fedkeeper.config import FederationConfig
from stacks.bundling import LambdaBundle, lambda_code
from stacks.cluster import ClusterStack, operator_namespace_rbac
from stacks.compliance import acknowledge
from stacks.network import LOG_RETENTION, PRIVATE, lambda_vpc_statements

CALICO_NAMESPACE = "tigera-operator"
RELEASE = "calico-enterprise"
# aws_eks_v2's kubectl provider: its handler (helm, kubectl) and the provider framework's
# onEvent function both run at most 15 minutes.
KUBECTL_PROVIDER_LIMIT = cdk.Duration.minutes(15)
# helm upgrade --install --atomic waits this long for the operator; on failure it uninstalls,
# which runs the chart's pre-delete hook Job (the operator deletes the Installation and waits
# for it, tigera/operator cmd/main.go executePreDeleteHook) and Helm waits for that Job up to
# the same --timeout. Plus the kubeconfig, the chart pull and the release bookkeeping
# (HELM_OVERHEAD): at worst 2 x HELM_TIMEOUT + HELM_OVERHEAD.
HELM_TIMEOUT = cdk.Duration.minutes(5)
HELM_OVERHEAD = cdk.Duration.minutes(1)
# How long the stack waits for the operator to create calico-system after the install
# (the kubectl provider's get handler polls every 10 s).
OPERATOR_NAMESPACE_TIMEOUT = cdk.Duration.minutes(10)
# The installer's own limit; its waits end fedkeeper.calico_install.RESPONSE_MARGIN_S
# before it.
INSTALLER_TIMEOUT = cdk.Duration.minutes(15)
# CloudFormation gives up on a custom resource that has not answered after this long
# (default: one hour). No provider here can answer later than its Lambda's limit.
SERVICE_TIMEOUT = KUBECTL_PROVIDER_LIMIT


class CalicoStack(cdk.Stack):
    """The tigera-operator release and the reconciler's RBAC in the operator's namespaces."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FederationConfig,
        config_dir: Path,
        cluster: ClusterStack,
        code_bundle: LambdaBundle,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        calico = config.sole_eks().calico
        # aws_eks_v2.Cluster implements ICluster; jsii's Python typing misses one property.
        eks_cluster = cast(eks.ICluster, cluster.cluster)
        chart_asset = None
        if calico.chart_file:
            path = (config_dir / calico.chart_file).resolve()
            if not path.is_file():
                raise ValueError(
                    f"eks.calico.chart_file: {path} does not exist; run `helm pull "
                    f"tigera-ee/tigera-operator --version {calico.chart_version}` there"
                )
            chart_asset = s3_assets.Asset(self, "CalicoChartAsset", path=str(path))
            self._acknowledge_asset_read(cluster)
        self.chart = eks.HelmChart(
            self,
            "CalicoEnterprise",
            cluster=eks_cluster,
            chart="tigera-operator" if chart_asset is None else None,
            repository=calico.chart_repository if chart_asset is None else None,
            chart_asset=chart_asset,
            # A packaged chart carries its own version (chart_file names the same one).
            version=calico.chart_version if chart_asset is None else None,
            release=RELEASE,
            namespace=CALICO_NAMESPACE,
            create_namespace=True,
            values=calico_values(config),
            # A failed upgrade rolls the release back instead of leaving it half-applied.
            atomic=True,
            timeout=HELM_TIMEOUT,
        )
        # The operator needs nodes to run on; installing earlier only stalls the release.
        self.chart.node.add_dependency(cluster.nodegroup)

        self.installer = self._installer(cluster, code_bundle)
        self.prerequisites = self._install_step("Prerequisites", "prerequisites")
        # The pull Secrets are in place before the operator starts looking for them.
        self.chart.node.add_dependency(self.prerequisites)

        # The operator creates calico-system once it reconciles the Installation; the
        # namespaced RBAC waits for it rather than declaring (and later deleting) it.
        self.operator_namespace = eks.KubernetesObjectValue(
            self,
            "CalicoSystemNamespace",
            cluster=eks_cluster,
            object_type="namespace",
            object_name="calico-system",
            json_path=".metadata.name",
            timeout=OPERATOR_NAMESPACE_TIMEOUT,
        )
        self.operator_namespace.node.add_dependency(self.chart)
        self.rbac = eks.KubernetesManifest(
            self,
            "ReconcilerRbacInCalicoNamespaces",
            cluster=eks_cluster,
            manifest=operator_namespace_rbac(config),
        )
        self.rbac.node.add_dependency(self.operator_namespace)
        self.license = self._install_step("License", "license")
        self.license.node.add_dependency(self.operator_namespace)
        # aws_eks_v2 nests each custom resource's CfnResource in a construct; find them all.
        for cfn in self.node.find_all():
            if isinstance(cfn, cdk.CfnResource) and cfn.cfn_resource_type.startswith("Custom::"):
                cfn.add_property_override("ServiceTimeout", SERVICE_TIMEOUT.to_seconds())

        cdk.CfnOutput(
            self,
            "CalicoLicenseSecret",
            value=calico.license_secret_name,
            description="Secrets Manager secret whose LicenseKey manifest the stack applies",
        )

    # --- the installer: pull Secrets before the chart, the licence after it ------------------

    def _installer(self, cluster: ClusterStack, code_bundle: LambdaBundle) -> lambda_.Function:
        """The installer function, its role, access entry and RBAC (applied by kubectl)."""
        calico = self.config.sole_eks().calico
        eks_cluster = cast(eks.ICluster, cluster.cluster)
        role = iam.Role(
            self,
            "InstallerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="fedkeeper calico installer: pull Secrets and licence from Secrets "
            "Manager into the cluster (deploy time only)",
        )
        access = eks.CfnAccessEntry(
            self,
            "InstallerAccessEntry",
            cluster_name=cluster.cluster.cluster_name,
            principal_arn=role.role_arn,
            kubernetes_groups=[INSTALLER_GROUP],
            type="STANDARD",
        )
        rbac = eks.KubernetesManifest(
            self, "InstallerRbac", cluster=eks_cluster, manifest=installer_rbac(self.config)
        )
        log_group = logs.LogGroup(
            self,
            "InstallerLogs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        vpc = cluster.cluster.vpc
        subnets = vpc.select_subnets(subnet_type=PRIVATE.subnet_type).subnet_ids
        security_group = cluster.cluster.cluster_security_group
        policy = iam.Policy(
            self,
            "InstallerPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadCalicoSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[
                        self._secret_arn(calico.pull_secret_source),
                        self._secret_arn(calico.license_secret_name),
                    ],
                ),
                iam.PolicyStatement(
                    # The secrets are the operator's, their keys unknown here: decryption
                    # only through Secrets Manager.
                    sid="DecryptCalicoSecrets",
                    actions=["kms:Decrypt"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="FindTheCluster",
                    actions=["eks:DescribeCluster"],
                    resources=[
                        self.format_arn(
                            service="eks",
                            resource="cluster",
                            resource_name=self.config.sole_eks().cluster_name,
                        )
                    ],
                ),
                iam.PolicyStatement(
                    sid="WriteLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
                *lambda_vpc_statements(
                    self, vpc.vpc_id, subnets, [security_group.security_group_id]
                ),
            ],
        )
        function = lambda_.Function(
            self,
            "InstallerFunction",
            description="fedkeeper: Calico's pull Secrets and licence from Secrets Manager "
            "(lambdas/calico_install.py)",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.X86_64,
            handler="lambdas.calico_install.handler",
            code=lambda_code(code_bundle),
            role=role,
            memory_size=256,
            timeout=INSTALLER_TIMEOUT,
            log_group=log_group,
            vpc=vpc,
            vpc_subnets=PRIVATE,
            security_groups=[security_group],
        )
        # Lambda checks the role's VPC permissions when it creates the function; the
        # cluster refuses the installer until its access entry and RBAC exist.
        function.node.add_dependency(policy)
        function.node.add_dependency(access)
        function.node.add_dependency(rbac)
        self._acknowledge_installer(policy)
        return function

    def _install_step(self, construct_id: str, step: str) -> cdk.CustomResource:
        calico = self.config.sole_eks().calico
        cal_api = self.config.federation.calico_api
        return cdk.CustomResource(
            self,
            construct_id,
            service_token=self.installer.function_arn,
            resource_type="Custom::FedkeeperCalicoInstall",
            service_timeout=SERVICE_TIMEOUT,
            # Names only: the installer reads the values from Secrets Manager itself.
            properties={
                "Step": step,
                "ClusterName": self.config.sole_eks().cluster_name,
                "Federation": self.config.name,
                "PullSecretName": calico.pull_secret_name,
                "PullSecretSource": calico.pull_secret_source,
                "LicenseSource": calico.license_secret_name,
                "CalicoGroup": cal_api.group,
                "CalicoVersion": cal_api.version,
            },
        )

    def _secret_arn(self, name_or_arn: str) -> str:
        """A Secrets Manager secret's ARN for a policy (names get the -?????? suffix)."""
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return self.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{name_or_arn}-??????",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge_installer(self, policy: iam.Policy) -> None:
        # cdk-nag shows unresolved parts as <AWS::...>; partition and region are literals
        # once the region is known.
        partition = (
            "<AWS::Partition>" if cdk.Token.is_unresolved(self.partition) else self.partition
        )
        region = "<AWS::Region>" if cdk.Token.is_unresolved(self.region) else self.region
        prefix = f"arn:{partition}:{{service}}:{region}:<AWS::AccountId>:"
        reasons = {
            "Resource::*": "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no "
            "resource-level permissions; kms:Decrypt is limited to calls made through Secrets "
            "Manager (kms:ViaService), since the secrets' keys are the operator's.",
            "Resource::"
            + prefix.format(service="ec2")
            + "network-interface/*": "Lambda's own network interfaces get ids only when it "
            "creates them; the ec2:Vpc condition keeps them to the federation's VPC.",
        }
        for name in (
            self.config.sole_eks().calico.pull_secret_source,
            self.config.sole_eks().calico.license_secret_name,
        ):
            if not name.startswith("arn:"):
                reasons[
                    "Resource::" + prefix.format(service="secretsmanager") + f"secret:{name}-??????"
                ] = (
                    "Secrets Manager appends six random characters to a secret's name in its "
                    "ARN; -?????? matches exactly the one secret the config names."
                )
        for finding, reason in reasons.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)

    def _acknowledge_asset_read(self, cluster: ClusterStack) -> None:
        """cdk-nag findings of the kubectl provider's read grant on the chart asset."""
        provider = cluster.cluster.kubectl_provider
        if provider is None:
            return
        bucket = (
            f"arn:{self.partition}:s3:::cdk-{cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER}"
            f"-assets-<AWS::AccountId>-{self.region}/*"
        )
        reason = (
            "aws_eks_v2 grants its kubectl provider read access (s3:GetObject*, "
            "s3:GetBucket*, s3:List*) to the CDK assets bucket so Helm can read the "
            "air-gapped tigera-operator chart; deploy-time only."
        )
        for finding in ("Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*"):
            acknowledge(provider, f"AwsSolutions-IAM5[{finding}]", reason)
        acknowledge(provider, f"AwsSolutions-IAM5[Resource::{bucket}]", reason)


def calico_values(config: FederationConfig) -> dict[str, Any]:
    """tigera-operator chart values: Calico Enterprise in policy-only mode on EKS.

    Neither the pull secret nor the licence is in the template: the Installation names the
    pull Secret the installer writes into ``tigera-operator`` before the chart, and the
    installer applies the LicenseKey from Secrets Manager after it. With
    ``eks.calico.log_storage: false`` log storage and what needs it (log collection, the
    manager UI) are off. ``eks.calico.values`` is merged over these (config refuses the
    fixed keys).
    """
    calico = config.sole_eks().calico
    values: dict[str, Any] = {
        "installation": {
            "enabled": True,
            # Calico Enterprise: the operator runs the Federated Services Controller.
            "variant": "TigeraSecureEnterprise",
            "kubernetesProvider": "EKS",
            "cni": {"type": "AmazonVPC"},
            # Pods get VPC addresses from the AWS VPC CNI: no Calico IP pools, no BGP.
            "calicoNetwork": {"bgp": "Disabled", "ipPools": []},
            "registry": calico.registry,
            "imagePullSecrets": [{"name": calico.pull_secret_name}],
        },
        "tigeraOperator": {"registry": calico.registry.rstrip("/")},
    }
    if not calico.log_storage:
        for component in LOG_STORAGE_COMPONENTS:
            values[component] = {"enabled": False}
    return _merged(values, calico.values)


# Calico Enterprise chart components that need log storage (Elasticsearch): switched off
# with it (Tigera's chart values logStorage, logCollector and manager).
LOG_STORAGE_COMPONENTS = ("logStorage", "logCollector", "manager")


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
