"""cdk-nag (3.x, AwsSolutions pack) registration and acknowledgements.

cdk-nag 3 runs as a CDK policy-validation plugin: ``synth`` fails on any finding that is
not acknowledged, and writes the report into the cloud assembly. Every acknowledgement sits
next to the construct it concerns and says why the finding is acceptable.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_compliance_checks(app: cdk.App) -> None:
    """Register the AwsSolutions pack on the whole app.

    Acknowledgements are also written into each resource's template ``Metadata``
    (``cdk_nag.rules_to_suppress``), so the reasons travel with the deployed templates.
    """
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cdk-nag finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope``."""
    Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
