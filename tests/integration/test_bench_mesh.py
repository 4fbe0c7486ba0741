"""bench/mesh.py: what it prints is measured, or says plainly that it was not."""

from __future__ import annotations

import pytest

from bench.mesh import NOT_RUN, MeshFigures, measure, render, rows

pytestmark = pytest.mark.xdist_group("bench-mesh")


def test_a_figure_the_engine_did_not_produce_reads_not_run_with_the_reason() -> None:
    figures = MeshFigures(4, 2, 2, 12, 4, 1, 0.8, (14, 17), 5, refused=["converge: why"])

    (row,) = rows([figures])

    assert row[:8] == ["4", "2+2", "12", "4", "1", "0.8", "14-17", "5"]
    assert row[8:] == [NOT_RUN] * 5
    assert render([figures]).endswith("  converge: why")


def test_the_two_cluster_mesh_is_built_and_its_converged_run_measured() -> None:
    figures = measure(2)

    assert (figures.eks, figures.sites, figures.pairs, figures.vpns) == (1, 1, 2, 1)
    assert figures.build_s > 0
    assert figures.objects[0] > 0
    assert figures.calls is not None and figures.calls[0] > 0
    assert figures.writes == 0  # a converged run writes nothing
