"""Alignment: score per team with its trend, new vs solved findings, the top findings to act on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import (
    PALETTE,
    Figure,
    ReportContext,
    Section,
    Table,
    esc,
    nowrap,
    trend_note,
)
from pmolens.reports.finding_text import finding_sentence
from pmolens.reports.i18n import add_labels
from pmolens.reports.sentence import who_acts as role_label
from pmolens.warehouse.transforms.alignment import SEVERITIES, daily_trend, score_scope

MAX_ROWS = 40
WINDOW_DAYS = 14  # "new" and "solved" mean: in the last two weeks (a steering cadence)

add_labels(
    {
        "align_title": {"en": "Alignment across teams", "nl": "Afstemming tussen teams"},
        "align_lead": {
            "en": "Agile PMO checks on every sync. Score = share of open items without findings, "
            "weighted by severity (100 = no findings). New and solved: last {days} days.",
            "nl": "Agile PMO-controles bij elke synchronisatie. Score = aandeel open items zonder "
            "bevindingen, gewogen naar ernst (100 = geen bevindingen). Nieuw en opgelost: "
            "laatste {days} dagen.",
        },
        "align_score_all": {"en": "Alignment score", "nl": "Afstemmingsscore"},
        "align_open": {"en": "Open findings", "nl": "Open bevindingen"},
        "align_new": {"en": "New findings", "nl": "Nieuwe bevindingen"},
        "align_solved": {"en": "Solved findings", "nl": "Opgeloste bevindingen"},
        "align_score_question": {
            "en": "How aligned is each team, and is it getting better?",
            "nl": "Hoe goed is elk team afgestemd, en wordt dat beter?",
        },
        "align_trend_question": {
            "en": "How does the alignment score of each organisation develop?",
            "nl": "Hoe ontwikkelt de afstemmingsscore van elke organisatie zich?",
        },
        "align_rules_question": {
            "en": "Which checks find the most, and what was solved?",
            "nl": "Welke controles vinden het meest, en wat is opgelost?",
        },
        "align_change": {"en": "change", "nl": "verandering"},
        "align_top": {"en": "Top findings by severity", "nl": "Belangrijkste bevindingen"},
        "align_solved_table": {"en": "Solved findings", "nl": "Opgeloste bevindingen"},
        "align_rule": {"en": "Check", "nl": "Controle"},
        "align_severity": {"en": "Severity", "nl": "Ernst"},
        "align_item": {"en": "Item", "nl": "Item"},
        "align_owner_role": {"en": "Who acts", "nl": "Actiehouder"},
        "align_message": {"en": "Finding", "nl": "Bevinding"},
        "align_open_days": {"en": "Days open", "nl": "Dagen open"},
        "align_resolved_at": {"en": "Solved on", "nl": "Opgelost op"},
        "align_score": {"en": "Score", "nl": "Score"},
        "align_info": {"en": "info", "nl": "info"},
        "align_warning": {"en": "warning", "nl": "waarschuwing"},
        "align_critical": {"en": "critical", "nl": "kritiek"},
        "align_rule_orphan_work": {
            "en": "Work with no path up to an epic",
            "nl": "Werk zonder pad naar een epic",
        },
        "align_rule_epic_without_strategic_parent": {
            "en": "Epic not under an initiative",
            "nl": "Epic niet onder een initiatief",
        },
        "align_rule_no_owner": {
            "en": "Epic or feature without an owner",
            "nl": "Epic of feature zonder eigenaar",
        },
        "align_rule_unestimated_committed": {
            "en": "Committed work without an estimate",
            "nl": "Toegezegd werk zonder schatting",
        },
        "align_rule_priority_inversion": {
            "en": "High priority waits on lower priority",
            "nl": "Hoge prioriteit wacht op lagere prioriteit",
        },
        "align_rule_dependency_timing_conflict": {
            "en": "Waiting work with a red line",
            "nl": "Wachtend werk met een rode lijn",
        },
        "align_rule_sprint_cadence_misalignment": {
            "en": "Team off the sprint cadence",
            "nl": "Team wijkt af van het sprintritme",
        },
        "align_rule_dod_drift": {
            "en": "Definition of Done drift",
            "nl": "Afwijkende Definition of Done",
        },
        "align_rule_stale_work": {"en": "Stale work", "nl": "Stilstaand werk"},
        "align_rule_done_but_open": {
            "en": "Epic status contradicts its items",
            "nl": "Epicstatus strijdig met zijn items",
        },
        "align_rule_epic_spread": {
            "en": "Epic spread over too many teams",
            "nl": "Epic verspreid over te veel teams",
        },
        "align_rule_wip_overload": {
            "en": "Team works on too much at once",
            "nl": "Team werkt aan te veel tegelijk",
        },
        "align_rule_duplicate_effort": {
            "en": "Near-identical work in different teams",
            "nl": "Vrijwel gelijk werk in verschillende teams",
        },
        "align_rule_unassigned_in_active_sprint": {
            "en": "Sprint work without an assignee",
            "nl": "Sprintwerk zonder uitvoerder",
        },
    }
)

COLOURS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#7f8c8d"}


def who_acts(role: str | None, t: Callable[[str], str]) -> str:
    """The acting role as the reader says it (the decisions' role labels)."""

    return role_label(role, t)


def rule_title(ctx: ReportContext, rule: str) -> str:
    """Built-in rules in the report's language; custom rules by their id."""
    try:
        return ctx.t(f"align_rule_{rule}")
    except KeyError:
        return rule


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    as_of = ctx.inputs.as_of
    window = as_of - timedelta(days=WINDOW_DAYS)
    findings = ctx.scoped(ctx.result("findings"))
    open_ = findings.filter(pl.col("status") != "resolved")
    new = open_.filter(pl.col("first_seen") >= window)
    solved = findings.filter(pl.col("resolved_at") >= window)
    teams = ctx.scoped(ctx.result("alignment_scores_team"))
    orgs = ctx.scoped(ctx.result("alignment_scores_org"))
    trend = _trend(ctx)
    items = float(orgs["items"].sum())
    penalty = float(orgs["weighted_penalty"].sum())
    overall = 100.0 * (1 - penalty / items) if items else 100.0
    headline = [
        (t("align_score_all"), ctx.num(overall, 0)),
        (t("align_open"), ctx.num(open_.height)),
        (t("align_new"), ctx.num(new.height)),
        (t("align_solved"), ctx.num(solved.height)),
    ]
    figures = []
    if teams.height:
        figures.append(Figure(t("align_score_question"), _score_bars(ctx, teams, trend, window)))
    org_trend = trend.filter(pl.col("scope").str.starts_with("organisation:"))
    days = org_trend["day"].unique().sort().to_list()
    if len(days) > 1:
        figures.append(Figure(t("align_trend_question"), _trend_lines(ctx, org_trend)))
    else:
        note = trend_note(ctx, days or [ctx.inputs.as_of])
        figures.append(Figure(t("align_trend_question"), None, note))
    if findings.height:
        figures.append(Figure(t("align_rules_question"), _rule_bars(ctx, open_, new, solved)))
    return Section(
        key="alignment",
        title=t("align_title"),
        lead=t("align_lead").format(days=WINDOW_DAYS),
        headline=headline,
        figures=figures,
        tables=[
            (t("align_top"), _findings_table(ctx, open_, resolved=False)),
            (t("align_solved_table"), _findings_table(ctx, solved, resolved=True)),
        ],
    )


def _trend(ctx: ReportContext) -> pl.DataFrame:
    """Daily scores from the per-sync snapshots (empty when the report has no warehouse)."""
    warehouse = ctx.inputs.warehouse
    if warehouse is None:
        return pl.DataFrame(
            schema={"scope": pl.String, "metric": pl.String, "day": pl.Date, "value": pl.Float64}
        )
    snapshots = warehouse.query(
        "SELECT * FROM metric_snapshots WHERE family = 'alignment' AND metric = 'score'"
    )
    return daily_trend(snapshots, ctx.inputs.as_of, 90)


def _score_bars(
    ctx: ReportContext, teams: pl.DataFrame, trend: pl.DataFrame, window: datetime
) -> go.Figure:
    t = ctx.t
    earlier = (
        trend.filter(pl.col("day") <= window.date())
        .sort("day")
        .group_by("scope")
        .agg(pl.col("value").last().alias("_before"))
    )
    rows = (
        teams.with_columns(score_scope("team").alias("scope"))
        .join(earlier, on="scope", how="left")
        .with_columns((pl.col("score") - pl.col("_before")).alias("_change"))
        .sort("score", "organisation", "team")
    )
    labels = [
        f"{esc(o)} · {esc(tm or t('no_team'))}"
        for o, tm in zip(rows["organisation"], rows["team"], strict=True)
    ]
    changes = [
        "" if c is None else ("+" if c > 0 else "") + ctx.num(c, 0)
        for c in rows["_change"].to_list()
    ]
    colours = [
        COLOURS["critical"] if s < 60 else COLOURS["warning"] if s < 80 else "#27ae60"
        for s in rows["score"].to_list()
    ]
    figure = go.Figure(
        go.Bar(
            x=rows["score"].to_list(),
            y=labels,
            orientation="h",
            marker_color=colours,
            text=changes,
            textposition="outside",
            customdata=list(zip(rows["items"], rows["items_with_findings"], changes, strict=True)),
            hovertemplate="%{y}<br>"
            + esc(t("align_score"))
            + " %{x:.0f} (%{customdata[1]}/%{customdata[0]} "
            + esc(t("items"))
            + "), "
            + esc(t("align_change"))
            + " %{customdata[2]}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 105], "title": t("align_score")},
        height=max(260, 26 * len(labels) + 80),
        margin={"l": 220, "r": 40, "t": 10, "b": 40},
    )
    return figure


def _trend_lines(ctx: ReportContext, trend: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    for i, ((scope,), part) in enumerate(trend.sort("day").group_by("scope", maintain_order=True)):
        figure.add_trace(
            go.Scatter(
                x=[d.isoformat() for d in part["day"]],
                y=part["value"].to_list(),
                mode="lines+markers",
                name=esc(str(scope).removeprefix("organisation:")),
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    figure.update_layout(
        xaxis=ctx.date_axis(),
        yaxis={"range": [0, 105], "title": ctx.t("align_score")},
        height=320,
        margin={"l": 60, "r": 20, "t": 10, "b": 40},
    )
    return figure


def _rule_bars(
    ctx: ReportContext, open_: pl.DataFrame, new: pl.DataFrame, solved: pl.DataFrame
) -> go.Figure:
    t = ctx.t
    rules = sorted(set(open_["rule"]) | set(solved["rule"]))
    counts = {
        name: dict(frame.group_by("rule").len().iter_rows())
        for name, frame in (("open", open_), ("new", new), ("solved", solved))
    }
    labels = [esc(rule_title(ctx, r)) for r in rules]
    figure = go.Figure(
        [
            go.Bar(name=esc(t(label)), y=labels, x=[counts[key].get(r, 0) for r in rules],
                   orientation="h", marker_color=colour)
            for key, label, colour in (
                ("open", "align_open", "#1f5fbf"),
                ("new", "align_new", COLOURS["warning"]),
                ("solved", "align_solved", "#27ae60"),
            )
        ]
    )  # fmt: skip
    figure.update_layout(
        barmode="group",
        height=max(260, 40 * len(labels) + 80),
        margin={"l": 300, "r": 20, "t": 10, "b": 40},
    )
    return figure


def _findings_table(ctx: ReportContext, frame: pl.DataFrame, *, resolved: bool) -> Table:
    t = ctx.t
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    ordered = frame.sort(
        [
            pl.col("severity").replace_strict(rank, default=-1, return_dtype=pl.Int8),
            "resolved_at" if resolved else "open_days",
        ],
        descending=[True, True],
        nulls_last=True,
    )
    rows = [
        [
            t(f"align_{r['severity']}"),
            rule_title(ctx, r["rule"]),
            ctx.link(r["key"], r["url"], r["item_id"]) if r["key"] else "",
            r["team"] or "",
            r["organisation"] or "",
            who_acts(r["owner_role"], t),
            finding_sentence(r, t),
            nowrap(ctx.day(r["resolved_at"]))
            if resolved and r["resolved_at"]
            else ctx.num(r["open_days"] or 0, 0),
        ]
        for r in ordered.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("align_severity"),
        t("align_rule"),
        t("align_item"),
        t("team"),
        t("organisation"),
        t("align_owner_role"),
        t("align_message"),
        t("align_resolved_at") if resolved else t("align_open_days"),
    ]
    return Table(columns, rows, more=max(0, ordered.height - MAX_ROWS))
