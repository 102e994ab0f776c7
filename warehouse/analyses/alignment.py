"""Alignment findings (with their lifecycle across syncs), alignment scores, the rule catalogue
and the impediment backlog; plus per-sync snapshots for their trends."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.transforms.alignment import (
    SEVERITIES,
    alignment_scores,
    evaluate,
    rule_catalogue,
    update_findings,
)
from pmolens.warehouse.transforms.impediments import (
    impediment_backlog,
    impediment_snapshot,
)

#: Resolved findings stay in the findings table this long (for "what was solved").
KEEP_RESOLVED_DAYS = 90.0


@once
def findings_state(inputs: Inputs) -> pl.DataFrame:
    """This evaluation's findings merged with the stored ones (first_seen / resolved_at kept)."""
    settings = inputs.settings
    current = evaluate(
        inputs.frames,
        inputs.dependency_edges,
        inputs.as_of,
        settings.rules,
        settings.custom_rules,
    )
    return update_findings(inputs.previous("findings"), current, inputs.as_of, KEEP_RESOLVED_DAYS)


def _open(inputs: Inputs) -> pl.DataFrame:
    return findings_state(inputs).filter(pl.col("resolved_at").is_null())


@analysis("findings")
def _findings(inputs: Inputs) -> pl.DataFrame:
    return findings_state(inputs)


@analysis("alignment_scores_team")
def _scores_team(inputs: Inputs) -> pl.DataFrame:
    return alignment_scores(inputs.work_items, _open(inputs), "team")


@analysis("alignment_scores_org")
def _scores_org(inputs: Inputs) -> pl.DataFrame:
    return alignment_scores(inputs.work_items, _open(inputs), "organisation")


@analysis("alignment_rules")
def _rules(inputs: Inputs) -> pl.DataFrame:
    return rule_catalogue(inputs.settings.rules, inputs.settings.custom_rules)


@once
def impediments(inputs: Inputs) -> pl.DataFrame:
    settings = inputs.settings
    return impediment_backlog(
        inputs.work_items,
        inputs.dependency_edges,
        inputs.frames["status_changes"],
        inputs.as_of,
        settings.analytics.impediments,
        {s.name: s.blocked_statuses for s in settings.sources},
        inputs.frames.get("sprints"),
    )


@analysis("impediments")
def _impediments(inputs: Inputs) -> pl.DataFrame:
    return impediments(inputs)


def _row(family: str, metric: str, scope: str, value: float | None) -> dict[str, Any]:
    return {"family": family, "metric": metric, "scope": scope, "value": value}


@snapshot
def _alignment_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "alignment": score per team / organisation / all; open findings per severity."""
    team = alignment_scores(inputs.work_items, _open(inputs), "team")
    org = alignment_scores(inputs.work_items, _open(inputs), "organisation")
    rows = [
        _row("alignment", "score", f"team:{o or ''}/{t or ''}", s)
        for o, t, s in team.select("organisation", "team", "score").iter_rows()
    ]
    rows += [
        _row("alignment", "score", f"organisation:{o or ''}", s)
        for o, s in org.select("organisation", "score").iter_rows()
    ]
    items = float(org["items"].sum())
    if items:
        penalty = float(org["weighted_penalty"].sum())
        rows.append(_row("alignment", "score", "all", 100.0 * (1 - penalty / items)))
    state = findings_state(inputs)
    for severity in SEVERITIES:
        rows.append(
            _row(
                "alignment",
                "open_findings",
                f"severity:{severity}",
                float(
                    state.filter(pl.col("status") != "resolved")
                    .filter(pl.col("severity") == severity)
                    .height
                ),
            )
        )
    for status in ("new", "resolved"):
        rows.append(
            _row(
                "alignment",
                f"{status}_findings",
                "all",
                float(state.filter(pl.col("status") == status).height),
            )
        )
    return rows


@snapshot
def _impediment_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "impediments": open count and mean age (days) per escalation level."""
    rows = []
    for level, count, age in (
        impediment_snapshot(impediments(inputs), inputs.as_of)
        .select("level", "open", "mean_age_days")
        .iter_rows()
    ):
        rows.append(_row("impediments", "open", f"level:{level}", float(count)))
        rows.append(_row("impediments", "mean_age_days", f"level:{level}", age))
    return rows
