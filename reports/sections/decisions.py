"""What needs a decision today: the block that opens the report, the same lines as
``GET /decisions`` (the ``decisions`` analysis), each as one sentence in the reader's language
with its items linked, team and organisation, who acts and since when. Definitions:
docs/decisions.md; sentences: reports/decision_text.py."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.reports.blocks import ReportContext, Section, Table, nowrap
from pmolens.reports.decision_text import DASH, decision_sentence, kind_label, who_acts
from pmolens.warehouse.transforms.decisions import KINDS

MAX_ROWS = 60


def scoped(frame: pl.DataFrame, organisation: str | None) -> pl.DataFrame:
    """The lines an organisation takes part in: its own side or the other (a partner waiting on
    it, or its blocker), as ``GET /decisions?organisation=``."""
    if not organisation:
        return frame
    return frame.filter(
        (pl.col("organisation") == organisation).fill_null(False)
        | (pl.col("other_organisation") == organisation).fill_null(False)
    )


def _team_org(row: dict[str, Any], t: Any) -> str:
    team, org = row["team"], row["organisation"]
    if team is None and org is None:
        return DASH
    return f"{team or t('no_team')} · {org or DASH}"


def rows(frame: pl.DataFrame, ctx: ReportContext) -> list[list[Any]]:
    """Table rows: what (the sentence), item, blocking item, team · organisation, who acts,
    since (UTC day)."""
    t = ctx.t
    out = []
    for row in frame.iter_rows(named=True):
        other = row["other_key"] or row["other_item_id"]
        out.append(
            [
                decision_sentence(row, t),
                ctx.link(row["key"], row["url"], row["item_id"])
                if row["key"] or row["item_id"]
                else DASH,
                ctx.link(row["other_key"], row["other_url"], row["other_item_id"]) if other else "",
                nowrap(_team_org(row, t)),
                who_acts(row["owner_role"], t),
                nowrap(ctx.day(row["since"])),
            ]
        )
    return out


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    frame = scoped(ctx.result("decisions"), ctx.organisation)
    counts = dict(frame.group_by("kind").len().iter_rows())
    headline = [(t("decision_total"), ctx.num(frame.height))] + [
        (kind_label(kind, t), ctx.num(counts.get(kind, 0))) for kind in KINDS
    ]
    columns = [
        t("decision_what"),
        t("decision_item"),
        t("decision_other_item"),
        t("decision_team_org"),
        t("decision_who_acts"),
        t("decision_since"),
    ]
    table = Table(columns, rows(frame.head(MAX_ROWS), ctx), more=max(0, frame.height - MAX_ROWS))
    return Section(
        key="decisions",
        title=t("decision_title"),
        lead=t("decision_lead"),
        headline=headline,
        tables=[(t("decision_table"), table)],
    )
