"""The Scrum@Scale impediment backlog: by escalation level, heaviest first."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc
from pmolens.reports.i18n import add_labels
from pmolens.warehouse.transforms.impediments import LEVELS

MAX_ROWS = 40

add_labels(
    {
        "imped_title": {"en": "Impediment backlog", "nl": "Impedimentbacklog"},
        "imped_lead": {
            "en": "What stops a team now: blocked, flagged and impediment items, work in "
            "progress or in the current sprint waiting on an unfinished dependency, and red "
            "lines; weighted by what they hold up and escalated by how long they have blocked "
            "work and by weight.",
            "nl": "Wat een team nu tegenhoudt: geblokkeerde, gemarkeerde en impediment-items, "
            "werk dat loopt of in de huidige sprint staat en wacht op een afhankelijkheid die "
            "nog niet af is, en rode lijnen; gewogen naar wat ze ophouden en opgeschaald naar "
            "hoe lang ze het werk al blokkeren en naar gewicht.",
        },
        "imped_question": {
            "en": "Where on the escalation ladder are the impediments, and how old are they?",
            "nl": "Waar op de escalatieladder staan de impediments, en hoe oud zijn ze?",
        },
        "imped_level_team": {"en": "Team", "nl": "Team"},
        "imped_level_sos": {"en": "Scrum of Scrums", "nl": "Scrum of Scrums"},
        "imped_level_eat": {"en": "Executive Action Team", "nl": "Executive Action Team"},
        "imped_table": {"en": "Impediments by weight", "nl": "Impediments naar gewicht"},
        "imped_level": {"en": "Escalation", "nl": "Escalatie"},
        "imped_reason": {"en": "Why", "nl": "Waarom"},
        "imped_reason_type": {"en": "impediment item", "nl": "impediment-item"},
        "imped_reason_flagged": {"en": "flagged", "nl": "gemarkeerd"},
        "imped_reason_blocked_status": {"en": "blocked status", "nl": "geblokkeerde status"},
        "imped_reason_blocked_by_dependency": {
            "en": "waits on a dependency",
            "nl": "wacht op een afhankelijkheid",
        },
        "imped_age": {"en": "Age (days)", "nl": "Leeftijd (dagen)"},
        "imped_mean_age": {"en": "mean age (days)", "nl": "gemiddelde leeftijd (dagen)"},
        "imped_held_up": {"en": "Holds up", "nl": "Houdt op"},
        "imped_weight": {"en": "Weight", "nl": "Gewicht"},
        "imped_count": {"en": "Open impediments", "nl": "Open impediments"},
    }
)


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    backlog = ctx.scoped(ctx.result("impediments"))
    per_level = (
        pl.DataFrame({"level": list(LEVELS)})
        .join(
            backlog.group_by("level").agg(
                pl.len().alias("n"), pl.col("age_days").mean().alias("age")
            ),
            on="level",
            how="left",
        )
        .with_columns(pl.col("n").fill_null(0))
    )
    headline = [(t("imped_count"), ctx.num(backlog.height))] + [
        (t(f"imped_level_{level}"), ctx.num(n))
        for level, n in per_level.select("level", "n").rows()
    ]
    figures = []
    if backlog.height:
        figures.append(Figure(t("imped_question"), _ladder(ctx, per_level)))
    rows = [
        [
            t(f"imped_level_{r['level']}"),
            ctx.link(r["key"], r["url"], r["item_id"]),
            r["title"] or "",
            r["team"] or t("no_team"),
            r["organisation"] or "",
            t(f"imped_reason_{r['reason']}"),
            ctx.num(r["age_days"] or 0, 0),
            f"{ctx.num(r['held_up_items'])}: " + ", ".join(r["held_up_keys"] or []),
            ctx.num(r["weight"]),
        ]
        for r in backlog.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("imped_level"),
        t("align_item"),
        t("title"),
        t("team"),
        t("organisation"),
        t("imped_reason"),
        t("imped_age"),
        t("imped_held_up"),
        t("imped_weight"),
    ]
    return Section(
        key="impediments",
        title=t("imped_title"),
        lead=t("imped_lead"),
        headline=headline,
        figures=figures,
        tables=[(t("imped_table"), Table(columns, rows, more=max(0, backlog.height - MAX_ROWS)))],
    )


def _ladder(ctx: ReportContext, per_level: pl.DataFrame) -> go.Figure:
    t = ctx.t
    ages = ["" if a is None else ctx.num(a, 0) for a in per_level["age"].to_list()]
    figure = go.Figure(
        go.Bar(
            x=[esc(t(f"imped_level_{level}")) for level in per_level["level"]],
            y=per_level["n"].to_list(),
            marker_color=["#7f8c8d", "#e67e22", "#c0392b"],
            customdata=ages,
            hovertemplate="%{x}: %{y}, " + esc(t("imped_mean_age")) + " %{customdata}"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        yaxis={"title": t("imped_count")},
        height=300,
        margin={"l": 60, "r": 20, "t": 10, "b": 40},
    )
    return figure
