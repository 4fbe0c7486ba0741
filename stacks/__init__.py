"""The CDK app of fedkeeper: four stacks built from one federation.yaml.

``network`` (VPC, VPN, propagation) ← ``cluster`` (EKS, add-ons, nodes, RBAC) ← ``calico``
(the tigera-operator release, RBAC in its namespaces) and ← ``automation`` (Lambdas, rules,
alarms, trail). References flow one way only; a failed Helm release rolls back only
``calico``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from fedkeeper.config import FederationConfig
from stacks.automation import RUNTIME as LAMBDA_RUNTIME
from stacks.automation import AutomationStack
from stacks.bundling import SKIP_DEPS_CONTEXT, LambdaBundle, skip_deps_requested
from stacks.calico import CalicoStack
from stacks.cluster import ClusterStack
from stacks.compliance import add_compliance_checks
from stacks.network import NetworkStack

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FederationStacks:
    """The stacks of one federation, in deployment order."""

    network: NetworkStack
    cluster: ClusterStack
    calico: CalicoStack
    automation: AutomationStack


def feature_flags(project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The context of cdk.json, so ``python app.py`` synthesizes what ``cdk synth`` does."""
    path = project_root / "cdk.json"
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context)


def build_stacks(
    app: cdk.App,
    config: FederationConfig,
    config_file: Path,
    project_root: Path = PROJECT_ROOT,
) -> FederationStacks:
    """Add the network, cluster and automation stacks of ``config`` to ``app``."""
    # Account-agnostic unless the CDK CLI knows the account; the region is the config's.
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.aws.region)
    prefix = config.name
    skip_deps = skip_deps_requested(app.node.try_get_context(SKIP_DEPS_CONTEXT))
    # One code asset for every function (the automation's and the calico installer).
    code_bundle = LambdaBundle(
        project_root=project_root,
        config_file=config_file,
        python_version=LAMBDA_RUNTIME.name.removeprefix("python"),
        skip_deps=skip_deps,
    )
    network = NetworkStack(
        app,
        f"{prefix}-network",
        config=config,
        env=env,
        description=f"fedkeeper {prefix}: VPC, Site-to-Site VPN (BGP), route propagation",
    )
    cluster = ClusterStack(
        app,
        f"{prefix}-cluster",
        config=config,
        network=network,
        env=env,
        description=f"fedkeeper {prefix}: EKS with external SNAT and Calico policy-only",
    )
    calico = CalicoStack(
        app,
        f"{prefix}-calico",
        config=config,
        config_dir=config_file.parent,
        cluster=cluster,
        code_bundle=code_bundle,
        env=env,
        description=f"fedkeeper {prefix}: Calico Enterprise (tigera-operator) policy-only",
    )
    automation = AutomationStack(
        app,
        f"{prefix}-automation",
        config=config,
        config_file=config_file,
        project_root=project_root,
        network=network,
        cluster=cluster,
        skip_deps=skip_deps,
        env=env,
        description=f"fedkeeper {prefix}: drift detection and repair",
    )
    tag_key, tag_value = config.federation_tag
    for stack in (network, cluster, calico, automation):
        # fedkeeper finds the VPC, VGW, VPN and route tables by this tag.
        cdk.Tags.of(stack).add(tag_key, tag_value)
    return FederationStacks(network, cluster, calico, automation)


__all__ = [
    "FederationStacks",
    "add_compliance_checks",
    "build_stacks",
    "feature_flags",
]
