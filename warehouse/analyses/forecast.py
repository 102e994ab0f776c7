"""Monte Carlo forecasts: when open epics and initiatives land (dependency-aware) and how many
items each team finishes by a date. Transforms: warehouse/transforms/forecast.py; definitions:
docs/forecast.md."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.analyses.flow import flow_params
from pmolens.warehouse.transforms.flow import NO_GROUP, as_of_date, cycle_times, daily_throughput
from pmolens.warehouse.transforms.forecast import (
    Forecast,
    ForecastParams,
    forecast,
    forecast_how_many,
)
from pmolens.warehouse.transforms.kpis import snapshot_rows


def forecast_params(inputs: Inputs) -> ForecastParams:
    return inputs.settings.analytics.forecast


@once
def daily(inputs: Inputs) -> pl.DataFrame:
    """Items done per team per day over the forecast window, zero days included; every team
    with open delivery work has rows (all zero when it finished nothing)."""
    data = inputs.flow_data
    cycles = cycle_times(
        inputs.work_items,
        inputs.frames["status_changes"],
        inputs.as_of,
        flow_params(inputs),
        data=data,
    )
    teams = (
        data.items.filter(pl.col("delivery") & (pl.col("status_category") != "done"))
        .select(pl.col("team").fill_null(NO_GROUP))
        .unique()["team"]
        .to_list()
    )
    frame = daily_throughput(
        cycles, inputs.as_of, forecast_params(inputs).window_days, "team", teams
    )
    return frame.join(inputs.team_organisation, on="team", how="left")


@once
def result(inputs: Inputs) -> Forecast:
    return forecast(
        inputs.flow_data, inputs.dependency_edges, daily(inputs), forecast_params(inputs)
    )


@once
def how_many(inputs: Inputs) -> pl.DataFrame:
    p = forecast_params(inputs)
    day0 = as_of_date(inputs.as_of)
    dates = [day0 + timedelta(weeks=w) for w in sorted({*p.how_many_weeks, p.default_weeks})]
    return forecast_how_many(daily(inputs), inputs.as_of, dates, p.trials, p.seed)


@analysis("forecast_epics")
def _epics(inputs: Inputs) -> pl.DataFrame:
    return result(inputs).epics


@analysis("forecast_initiatives")
def _initiatives(inputs: Inputs) -> pl.DataFrame:
    return result(inputs).initiatives


@analysis("forecast_teams")
def _teams(inputs: Inputs) -> pl.DataFrame:
    """How many items per team by each stored horizon (``how_many_weeks`` and ``default_weeks``)."""
    return how_many(inputs)


@analysis("forecast_daily_throughput")
def _daily(inputs: Inputs) -> pl.DataFrame:
    """The sampled history, kept so /forecast/teams can answer for any date."""
    return daily(inputs)


@snapshot
def _forecast_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "forecast": per epic the P50/P85/P95 in days from the sync and the chance of its
    target date; per team the P85 "at least" items by ``default_weeks``."""
    day0 = as_of_date(inputs.as_of)
    epics = result(inputs).epics.with_columns(
        *[
            (pl.col(f"p{q}") - pl.lit(day0)).dt.total_days().alias(f"p{q}_days")
            for q in (50, 85, 95)
        ]
    )
    weeks = forecast_params(inputs).default_weeks
    teams = how_many(inputs).filter(pl.col("days") == weeks * 7)
    rows = pl.concat(
        [
            snapshot_rows(
                epics,
                "forecast",
                pl.format("epic:{}", "epic_id"),
                ["p50_days", "p85_days", "p95_days", "p_on_time"],
            ),
            snapshot_rows(
                teams, "forecast", pl.format("team:{}", "team"), ["items_p50", "items_p85"]
            ),
        ]
    )
    return rows.to_dicts()
