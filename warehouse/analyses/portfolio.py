"""Portfolio overview analyses: the hierarchy with progress, rolled up per team and organisation."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, snapshot
from pmolens.warehouse.transforms.portfolio import portfolio_by


@analysis("portfolio")
def _portfolio(inputs: Inputs) -> pl.DataFrame:
    return inputs.portfolio


@analysis("portfolio_by_team")
def _portfolio_by_team(inputs: Inputs) -> pl.DataFrame:
    return portfolio_by(inputs.portfolio, "team")


@analysis("portfolio_by_organisation")
def _portfolio_by_org(inputs: Inputs) -> pl.DataFrame:
    return portfolio_by(inputs.portfolio, "organisation")


@snapshot
def _portfolio_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    items = inputs.work_items
    done = items.filter(pl.col("status_category") == "done").height
    rows = [
        {"family": "portfolio", "metric": "items", "scope": "all", "value": float(items.height)},
        {"family": "portfolio", "metric": "items_done", "scope": "all", "value": float(done)},
    ]
    for org, count in items.group_by("organisation").len().iter_rows():
        rows.append(
            {
                "family": "portfolio",
                "metric": "items",
                "scope": f"organisation:{org}",
                "value": float(count),
            }
        )
    return rows
