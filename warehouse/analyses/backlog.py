"""Backlog health analyses: the graded health per team, organisation and programme (Chief PO)
backlog, net flow per sprint, scope change and progress per epic. Transforms:
warehouse/transforms/backlog.py; definitions: docs/backlog-health.md."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.transforms.backlog import (
    BacklogParams,
    By,
    backlog_health_all,
    epic_progress,
    net_flow,
    scope_change,
    with_programme,
)

SCOPES: tuple[By, ...] = ("team", "organisation", "programme")


def backlog_params(inputs: Inputs) -> BacklogParams:
    return inputs.settings.analytics.backlog


@once
def _health(inputs: Inputs) -> pl.DataFrame:
    return backlog_health_all(
        inputs.work_items,
        inputs.frames["sprints"],
        inputs.frames["status_changes"],
        inputs.dependency_edges,
        inputs.as_of,
        backlog_params(inputs),
        data=inputs.flow_data,
        bys=SCOPES,
    )


@analysis("backlog_health")
def _backlog_health(inputs: Inputs) -> pl.DataFrame:
    return _health(inputs)


@analysis("backlog_net_flow")
def _net_flow(inputs: Inputs) -> pl.DataFrame:
    frame = net_flow(
        inputs.work_items,
        inputs.frames["sprints"],
        inputs.as_of,
        backlog_params(inputs),
        data=inputs.flow_data,
    )
    return inputs.with_team_organisation(frame)


@once
def _epic_programmes(inputs: Inputs) -> pl.DataFrame:
    """(epic_id, programme): each epic's initiative key, else its organisation."""
    return (
        with_programme(
            inputs.flow_data.items.select(
                "item_id", "level", "key", "title", "organisation", "initiative_id"
            )
        )
        .filter(pl.col("level") == "epic")
        .select(pl.col("item_id").alias("epic_id"), "programme")
    )


def _with_programme(inputs: Inputs, frame: pl.DataFrame) -> pl.DataFrame:
    """Adds ``programme`` (initiative key, else organisation) of each epic for filtering."""
    return frame.join(_epic_programmes(inputs), on="epic_id", how="left")


@analysis("backlog_scope_change")
def _scope_change(inputs: Inputs) -> pl.DataFrame:
    return _with_programme(
        inputs,
        scope_change(
            inputs.work_items,
            inputs.frames["status_changes"],
            inputs.as_of,
            backlog_params(inputs),
            data=inputs.flow_data,
        ),
    )


@analysis("backlog_epic_progress")
def _epic_progress(inputs: Inputs) -> pl.DataFrame:
    return _with_programme(
        inputs, epic_progress(inputs.work_items, backlog_params(inputs), data=inputs.flow_data)
    )


SNAPSHOT_METRICS = (
    "points",
    "items",
    "pct_estimated",
    "ready_depth_sprints",
    "top_n_ready_share",
    "stale_share",
    "net_flow_per_sprint",
)


@snapshot
def _backlog_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "backlog": grade points and the main signals per backlog per sync, scope
    "<by>:<scope>" (team:Web, organisation:Contoso, programme:NW-7)."""
    rows: list[dict[str, Any]] = []
    for record in _health(inputs).iter_rows(named=True):
        for metric in SNAPSHOT_METRICS:
            value = record[metric]
            if value is not None:
                rows.append(
                    {
                        "family": "backlog",
                        "metric": metric,
                        "scope": f"{record['by']}:{record['scope']}",
                        "value": float(value),
                    }
                )
    return rows
