"""Calico Enterprise on EKS, in its own stack after the cluster.

- The tigera-operator Helm chart (``eks.calico``): from Tigera's repository (or a mirror) at
  a validated version, or, air-gapped, from a local ``.tgz`` shipped as an S3 asset. Values
  put Calico in policy-only mode on the AWS VPC CNI and select the Calico Enterprise
  variant, for which the operator runs kube-controllers with the Federated Services
  Controller (tigera/operator ``pkg/render/kubecontrollers``: ``federatedservices`` is
  enabled for ``TigeraSecureEnterprise``).
- The reconciler's Roles in the namespaces the operator owns (``calico-system``), applied
  once the operator has created them; the stack never declares those namespaces, so
  ``cdk destroy`` cannot delete them.

Why a stack of its own: a Helm release that fails (a pull secret not yet in place, a chart
version the mirror lacks) fails and rolls back only this stack. In the cluster stack it
would roll back, and so delete, the EKS cluster and its node group with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from fedkeeper.config import FederationConfig
from stacks.cluster import ClusterStack, operator_namespace_rbac
from stacks.compliance import acknowledge

CALICO_NAMESPACE = "tigera-operator"
RELEASE = "calico-enterprise"
# How long the stack waits for the operator to create calico-system after the install.
OPERATOR_NAMESPACE_TIMEOUT = cdk.Duration.minutes(10)


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
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        calico = config.eks.calico
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
            timeout=cdk.Duration.minutes(15),
        )
        # The operator needs nodes to run on; installing earlier only stalls the release.
        self.chart.node.add_dependency(cluster.nodegroup)

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

        cdk.CfnOutput(
            self,
            "CalicoLicenseSecret",
            value=calico.license_secret_name,
            description="Secrets Manager secret whose LicenseKey manifest you apply once "
            "(docs/DEPLOY.md)",
        )

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
    pull Secret the operator expects in ``tigera-operator``, and the LicenseKey manifest is
    applied from Secrets Manager (``eks.calico.license_secret_name``; docs/DEPLOY.md).
    ``eks.calico.values`` is merged over these (config refuses the fixed keys).
    """
    calico = config.eks.calico
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
    return _merged(values, calico.values)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
