"""What needs a decision today: red lines that move a date, epics late or unlikely to make their
target, impediments at (or about to reach) the Executive Action Team, cross-organisation
dependencies at risk and new critical findings. Read from the other domains' intermediates, so
nothing is computed twice. Transform: warehouse/transforms/decisions.py; definitions:
docs/decisions.md."""

from __future__ import annotations

import polars as pl

from pmolens.warehouse.analyses import alignment, forecast
from pmolens.warehouse.analyses.base import Inputs, analysis
from pmolens.warehouse.transforms.decisions import decisions


def forecast_history(inputs: Inputs) -> pl.DataFrame | None:
    """[epic_id, as_of, p_on_time] of the syncs kept before these inputs' moment (the
    forecast's per-sync snapshots), for since when an epic is below its target chance."""
    if inputs.warehouse is None:
        return None
    return inputs.warehouse.query(
        """
        SELECT substr(scope, 6) AS epic_id, as_of, value AS p_on_time
        FROM metric_snapshots
        WHERE family = 'forecast' AND metric = 'p_on_time' AND scope LIKE 'epic:%' AND as_of < ?
        """,
        [inputs.as_of],
    )


@analysis("decisions")
def _decisions(inputs: Inputs) -> pl.DataFrame:
    return decisions(
        inputs.dependency_edges,
        forecast.result(inputs).epics,
        alignment.impediments(inputs),
        alignment.findings_state(inputs),
        inputs.as_of,
        inputs.settings.analytics.impediments,
        calendar=inputs.calendar,
        forecast_history=forecast_history(inputs),
    )
