"""Synthesize the CDK app once per test session; every infra test reads those templates.

The synth is the real one: the example config, cdk.json's feature flags, cdk-nag's
AwsSolutions pack and the Lambda asset bundled locally (the first session fills the
``.build/lambda-deps`` cache with pip; later sessions need no network).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# jsii warns on every start under Node 20; the warning is not what these tests check. Set
# before the first aws_cdk import (the test modules import it after this conftest).
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from fedkeeper.config import FederationConfig
    from fedkeeper.topology import MeshConfig
    from stacks import FederationStacks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = PROJECT_ROOT / "federation.example.yaml"
MESH_CONFIG = PROJECT_ROOT / "federation.mesh.example.yaml"


@dataclass(frozen=True)
class Synth:
    """One synthesized app: its config, stacks, templates and cloud assembly directory.

    ``config`` is the two-cluster view the stacks built the EKS cluster from (the file's own
    two-cluster config), ``mesh`` the file as the stacks read it.
    """

    config: FederationConfig
    mesh: MeshConfig
    stacks: FederationStacks
    outdir: Path
    network: Template
    cluster: Template
    calico: Template
    automation: Template


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from fedkeeper.topology import load_mesh
    from stacks import add_compliance_checks, build_stacks, feature_flags

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context=feature_flags(PROJECT_ROOT))
    mesh = load_mesh(EXAMPLE_CONFIG)
    stacks = build_stacks(app, mesh, EXAMPLE_CONFIG, PROJECT_ROOT)
    add_compliance_checks(app)
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    return Synth(
        config=stacks.automation.config,
        mesh=mesh,
        stacks=stacks,
        outdir=outdir,
        network=Template.from_stack(stacks.network),
        cluster=Template.from_stack(stacks.cluster),
        calico=Template.from_stack(stacks.calico),
        automation=Template.from_stack(stacks.automation),
    )


@pytest.fixture(scope="session")
def templates(synth: Synth) -> dict[str, dict[str, Any]]:
    """Stack name → synthesized template, as written to the cloud assembly."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(synth.outdir.glob("*.template.json"))
    }


@dataclass(frozen=True)
class MeshSynth:
    """The mesh example synthesized: its config, stacks and templates by stack name."""

    config: MeshConfig
    stacks: FederationStacks
    outdir: Path
    templates: dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def mesh_synth(tmp_path_factory: pytest.TempPathFactory) -> MeshSynth:
    """federation.mesh.example.yaml synthesized once (code-only Lambda asset: the mesh tests
    read the templates, not the bundle), with cdk-nag's AwsSolutions pack."""
    import aws_cdk as cdk

    from fedkeeper.topology import load_mesh
    from stacks import add_compliance_checks, build_stacks, feature_flags

    outdir = tmp_path_factory.mktemp("mesh.cdk.out")
    app = cdk.App(
        outdir=str(outdir), context={**feature_flags(PROJECT_ROOT), "skipLambdaDeps": "true"}
    )
    config = load_mesh(MESH_CONFIG)
    stacks = build_stacks(app, config, MESH_CONFIG, PROJECT_ROOT)
    add_compliance_checks(app)
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }
    return MeshSynth(config=config, stacks=stacks, outdir=outdir, templates=templates)
