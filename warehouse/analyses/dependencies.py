"""Dependency analytics: the edges (``Inputs.dependency_edges``, shared with alignment,
impediments, backlog and forecast) with blocked time, team and organisation matrices, red lines,
cycles, chains, bottlenecks, the Scrum of Scrums view, and the per-sync trend snapshot.
Transforms: warehouse/transforms/dependencies/."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.transforms.dependencies import (
    Condensed,
    DependencyParams,
    blocked_time,
    condense,
    dependency_bottlenecks,
    dependency_chains,
    dependency_conflicts,
    dependency_cycles,
    dependency_matrix,
    scrum_of_scrums,
    trend_snapshot,
    waiting_graph,
    with_blocked_time,
)


def params(inputs: Inputs) -> DependencyParams:
    return inputs.settings.analytics.dependencies


@once
def condensed(inputs: Inputs) -> Condensed:
    """The waiting graph, condensed: cycles, chains and bottlenecks share it."""
    return condense(waiting_graph(inputs.dependency_edges))


@once
def cycles(inputs: Inputs) -> pl.DataFrame:
    return dependency_cycles(inputs.dependency_edges, condensed(inputs))


@once
def bottlenecks(inputs: Inputs) -> tuple[pl.DataFrame, pl.DataFrame]:
    return dependency_bottlenecks(inputs.dependency_edges, params(inputs), condensed(inputs))


@analysis("dependency_edges")
def _edges(inputs: Inputs) -> pl.DataFrame:
    """The edges plus the dependent's blocked time from its status history."""
    e = inputs.dependency_edges
    blocked = blocked_time(
        inputs.work_items,
        inputs.frames["status_changes"],
        e["dependent_id"].drop_nulls().unique(),
        inputs.as_of,
        {s.name: s.blocked_statuses for s in inputs.settings.sources},
    )
    return with_blocked_time(e, blocked)


@analysis("dependency_matrix_team")
def _matrix_team(inputs: Inputs) -> pl.DataFrame:
    return dependency_matrix(inputs.dependency_edges, "team")


@analysis("dependency_matrix_org")
def _matrix_org(inputs: Inputs) -> pl.DataFrame:
    return dependency_matrix(inputs.dependency_edges, "organisation")


@analysis("dependency_conflicts")
def _conflicts(inputs: Inputs) -> pl.DataFrame:
    return dependency_conflicts(inputs.dependency_edges)


@analysis("dependency_cycles")
def _cycles(inputs: Inputs) -> pl.DataFrame:
    return cycles(inputs)


@analysis("dependency_chains")
def _chains(inputs: Inputs) -> pl.DataFrame:
    return dependency_chains(inputs.dependency_edges, inputs.as_of, condensed(inputs))


@analysis("dependency_bottlenecks")
def _bottlenecks(inputs: Inputs) -> pl.DataFrame:
    return bottlenecks(inputs)[0]


@analysis("dependency_bottlenecks_team")
def _bottlenecks_team(inputs: Inputs) -> pl.DataFrame:
    return bottlenecks(inputs)[1]


@analysis("dependency_sos")
def _sos(inputs: Inputs) -> pl.DataFrame:
    return scrum_of_scrums(inputs.work_items, inputs.dependency_edges)


@snapshot
def _dependency_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "dependencies": open / cross-team / cross-org counts, red lines, cycles per sync."""
    rows = trend_snapshot(inputs.dependency_edges, cycles(inputs))
    return [
        {"family": "dependencies", "metric": m, "scope": s, "value": v}
        for m, s, v in rows.iter_rows()
    ]
