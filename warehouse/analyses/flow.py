"""Flow metrics analyses (cycle time, throughput, WIP, CFD, aging, efficiency, distribution,
Little's Law) and the per-team summary behind GET /flow. Transforms: warehouse/transforms/flow.py;
definitions: docs/flow.md."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.transforms.flow import (
    NO_GROUP,
    FlowParams,
    aging_wip,
    cumulative_flow,
    cycle_time_percentiles,
    cycle_times,
    flow_distribution,
    flow_efficiency,
    flow_summary,
    littles_law,
    throughput,
    wip_daily,
)


def flow_params(inputs: Inputs) -> FlowParams:
    return inputs.settings.analytics.flow


@once
def _cycles(inputs: Inputs) -> pl.DataFrame:
    return cycle_times(
        inputs.work_items,
        inputs.frames["status_changes"],
        inputs.as_of,
        flow_params(inputs),
        data=inputs.flow_data,
    )


@once
def _cfd(inputs: Inputs) -> pl.DataFrame:
    return cumulative_flow(
        inputs.work_items,
        inputs.frames["status_changes"],
        inputs.as_of,
        params=flow_params(inputs),
        data=inputs.flow_data,
    )


@analysis("flow_cycle_times")
def _cycle_times(inputs: Inputs) -> pl.DataFrame:
    return _cycles(inputs)


@analysis("flow_percentiles")
def _percentiles(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(
        cycle_time_percentiles(_cycles(inputs), inputs.as_of, flow_params(inputs))
    )


@analysis("flow_throughput")
def _throughput(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(
        throughput(
            _cycles(inputs), inputs.as_of, params=flow_params(inputs), calendar=inputs.calendar
        )
    )


@analysis("flow_cfd")
def _cumulative_flow(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(_cfd(inputs))


@analysis("flow_wip")
def _wip(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(wip_daily(_cfd(inputs)))


@once
def _aging_frame(inputs: Inputs) -> pl.DataFrame:
    return aging_wip(
        inputs.work_items,
        inputs.frames["status_changes"],
        _cycles(inputs),
        inputs.as_of,
        flow_params(inputs),
        data=inputs.flow_data,
    )


@analysis("flow_aging")
def _aging(inputs: Inputs) -> pl.DataFrame:
    return _aging_frame(inputs)


@once
def _efficiency_frame(inputs: Inputs) -> pl.DataFrame:
    return flow_efficiency(
        inputs.work_items,
        inputs.frames["status_changes"],
        _cycles(inputs),
        inputs.as_of,
        flow_params(inputs),
        data=inputs.flow_data,
    )


@analysis("flow_efficiency")
def _efficiency(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(_efficiency_frame(inputs))


@analysis("flow_distribution")
def _distribution(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(
        flow_distribution(_cycles(inputs), inputs.as_of, flow_params(inputs))
    )


@once
def _littles_frame(inputs: Inputs) -> pl.DataFrame:
    return littles_law(
        wip_daily(_cfd(inputs)),
        _cycles(inputs),
        inputs.as_of,
        flow_params(inputs),
        calendar=inputs.calendar,
    )


@analysis("flow_littles_law")
def _littles(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(_littles_frame(inputs))


@once
def _summary_frame(inputs: Inputs) -> pl.DataFrame:
    return inputs.with_team_organisation(
        flow_summary(
            _cycles(inputs),
            wip_daily(_cfd(inputs)),
            _aging_frame(inputs),
            _efficiency_frame(inputs),
            _littles_frame(inputs),
            inputs.as_of,
            flow_params(inputs),
            calendar=inputs.calendar,
        ),
    )


@analysis("flow_summary")
def _summary(inputs: Inputs) -> pl.DataFrame:
    return _summary_frame(inputs)


SNAPSHOT_METRICS = (
    "cycle_p85",
    "throughput_per_week",
    "wip",
    "aging_over_p85",
    "flow_efficiency",
)


@snapshot
def _flow_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "flow": cycle time P85, throughput per week, WIP, items aging past P85 and flow
    efficiency per team (scope "team:<name>") and over all teams (scope "all") per sync."""
    summary = _summary_frame(inputs)
    overall = flow_summary(
        _cycles(inputs).with_columns(pl.lit("all").alias("team")),
        wip_daily(_cfd(inputs)).with_columns(pl.lit("all").alias("team")),
        _aging_frame(inputs).with_columns(pl.lit("all").alias("team")),
        None,
        None,
        inputs.as_of,
        flow_params(inputs),
        calendar=inputs.calendar,
    )
    rows: list[dict[str, Any]] = []
    for frame, prefix in ((summary, "team:"), (overall, "")):
        for record in frame.iter_rows(named=True):
            team = record["team"]
            if team == NO_GROUP:
                continue
            for metric in SNAPSHOT_METRICS:
                value = record.get(metric)
                if value is not None:
                    rows.append(
                        {
                            "family": "flow",
                            "metric": metric,
                            "scope": f"{prefix}{team}",
                            "value": float(value),
                        }
                    )
    return rows
