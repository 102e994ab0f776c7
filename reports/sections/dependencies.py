"""Dependencies between teams and organisations: matrix heatmaps, the team network, the red
lines (timing conflicts), cycles, the critical chain, bottlenecks and the trend.
Definitions: docs/dependencies.md."""

from __future__ import annotations

import math

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
from pmolens.reports.i18n import add_labels
from pmolens.warehouse.transforms.dependencies import RED_LINES
from pmolens.warehouse.transforms.dependencies.timing import red_line_headline

MAX_ROWS = 30
MAX_HEATMAP_TEAMS = 40  # beyond this the heatmap shows the busiest teams; the network shows all

add_labels(
    {
        "dep_title": {"en": "Dependencies", "nl": "Afhankelijkheden"},
        "dep_lead": {
            "en": "Work of one team that waits on another team or organisation. Red lines are "
            "open dependencies planned to finish before the work they wait on (conflicts), "
            "waiting on work that is not planned, or planned in the same sprint or on the same "
            "day (at risk).",
            "nl": "Werk van het ene team dat wacht op een ander team of een andere organisatie. "
            "Rode lijnen zijn open afhankelijkheden die eerder gepland staan dan het werk waarop "
            "ze wachten (conflicten), wachten op werk dat niet gepland is, of in dezelfde sprint "
            "of op dezelfde dag gepland staan (risico).",
        },
        "dep_open": {
            "en": "Open cross-team dependencies",
            "nl": "Open teamoverstijgende afhankelijkheden",
        },
        "dep_cross_org": {"en": "Across organisations", "nl": "Tussen organisaties"},
        "dep_team_cycles": {"en": "Team cycles", "nl": "Teamcycli"},
        "dep_longest_chain": {"en": "Longest chain (items)", "nl": "Langste keten (items)"},
        "dep_matrix_team_q": {
            "en": "Which teams wait on which teams (open dependencies, blocker in rows)?",
            "nl": "Welke teams wachten op welke teams (open afhankelijkheden, blokkerend team in "
            "rijen)?",
        },
        "dep_matrix_org_q": {
            "en": "How much do organisations wait on each other?",
            "nl": "Hoeveel wachten organisaties op elkaar?",
        },
        "dep_network_q": {
            "en": "Which team waits on which (arrow from the blocking to the waiting team, width = "
            "open dependencies, red = with conflicts, colour = organisation)?",
            "nl": "Welk team wacht op welk team (pijl van het blokkerende naar het wachtende team, "
            "dikte = open afhankelijkheden, rood = met conflicten, kleur = organisatie)?",
        },
        "dep_network_pair": {
            "en": "{dependent} waits on {blocker}: {n} open, {conflicts} conflicts",
            "nl": "{dependent} wacht op {blocker}: {n} open, {conflicts} conflicten",
        },
        "dep_trend_q": {
            "en": "Are dependencies and red lines (conflicts dotted) going down from sync to sync?",
            "nl": "Nemen afhankelijkheden en rode lijnen (conflicten gestippeld) af per "
            "synchronisatie?",
        },
        "dep_blocker": {"en": "Blocking item", "nl": "Blokkerend item"},
        "dep_dependent": {"en": "Waiting item", "nl": "Wachtend item"},
        "dep_blocker_team": {"en": "Blocking team", "nl": "Blokkerend team"},
        "dep_dependent_team": {"en": "Waiting team", "nl": "Wachtend team"},
        "dep_timing": {"en": "Kind", "nl": "Soort"},
        "dep_slip": {"en": "Slip (days)", "nl": "Uitloop (dagen)"},
        "dep_planned_end": {"en": "Planned end", "nl": "Gepland einde"},
        "dep_conflict": {"en": "conflict", "nl": "conflict"},
        "dep_at_risk": {"en": "at risk (same sprint)", "nl": "risico (zelfde sprint)"},
        "dep_unscheduled_blocker": {
            "en": "blocker not planned",
            "nl": "blokkerend item niet gepland",
        },
        "dep_red_table": {
            "en": "Red lines, by slip (re-plan one of the two in the Scrum of Scrums)",
            "nl": "Rode lijnen, op uitloop (herplan één van beide in de Scrum of Scrums)",
        },
        "dep_cycles_table": {
            "en": "Cycles: work that waits on itself (a planning deadlock)",
            "nl": "Cycli: werk dat op zichzelf wacht (een planningsimpasse)",
        },
        "dep_level": {"en": "Level", "nl": "Niveau"},
        "dep_members": {"en": "Members", "nl": "Leden"},
        "dep_level_item": {"en": "items", "nl": "items"},
        "dep_level_team": {"en": "teams", "nl": "teams"},
        "dep_chains_table": {
            "en": "Critical chains: the longest chain of waiting work, overall and per epic",
            "nl": "Kritieke ketens: de langste keten van wachtend werk, totaal en per epic",
        },
        "dep_scope": {"en": "Scope", "nl": "Bereik"},
        "dep_all": {"en": "all", "nl": "alles"},
        "dep_chain_items": {"en": "Items", "nl": "Items"},
        "dep_planned_days": {"en": "Planned days", "nl": "Geplande dagen"},
        "dep_head": {"en": "Head (start here)", "nl": "Begin (hier starten)"},
        "dep_path": {"en": "Chain", "nl": "Keten"},
        "dep_bottleneck_table": {
            "en": "Bottlenecks: items most work waits on",
            "nl": "Knelpunten: items waar het meeste werk op wacht",
        },
        "dep_team_bottleneck_table": {
            "en": "Bottlenecks: teams most work waits on",
            "nl": "Knelpunten: teams waar het meeste werk op wacht",
        },
        "dep_direct": {"en": "Waiting directly", "nl": "Direct wachtend"},
        "dep_transitive": {"en": "Waiting in total", "nl": "Totaal wachtend"},
        "dep_estimate": {"en": "Their estimate", "nl": "Hun schatting"},
        "dep_weight": {"en": "Weight", "nl": "Gewicht"},
        "dep_approx": {"en": "(estimate)", "nl": "(schatting)"},
        "dep_sync": {"en": "Sync", "nl": "Synchronisatie"},
        "dep_count": {"en": "Count", "nl": "Aantal"},
    }
)


def _touching(frame: pl.DataFrame, org: str | None, a: str, b: str) -> pl.DataFrame:
    if org is None:
        return frame
    return frame.filter((pl.col(a) == org).fill_null(False) | (pl.col(b) == org).fill_null(False))


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    org = ctx.organisation
    edges = _touching(ctx.result("dependency_edges"), org, "blocker_org", "dependent_org")
    matrix = _touching(ctx.result("dependency_matrix_team"), org, "blocker_org", "dependent_org")
    org_matrix = _touching(ctx.result("dependency_matrix_org"), org, "blocker_org", "dependent_org")
    red = _touching(ctx.result("dependency_conflicts"), org, "blocker_org", "dependent_org")
    cycles = ctx.result("dependency_cycles")
    if org is not None:
        cycles = cycles.filter(pl.col("organisations").list.contains(org))
    chains = ctx.result("dependency_chains")
    if org is not None:
        chains = chains.filter(pl.col("head_org") == org)  # the chains it must start
    bottlenecks = ctx.scoped(ctx.result("dependency_bottlenecks"))
    team_bottlenecks = ctx.scoped(ctx.result("dependency_bottlenecks_team"))

    cross = edges.filter(pl.col("open") & pl.col("cross_team").fill_null(False))
    longest = chains.filter(pl.col("scope") == "all")
    red_lines = red_line_headline(red)  # the same figures as the CLI, the API and the rule
    headline = [
        (t("dep_open"), ctx.num(cross.height)),
        (t("dep_cross_org"), ctx.num(cross.filter(pl.col("cross_org")).height)),
        (t("red_lines"), ctx.num(red_lines["red_lines"])),
        *(
            (t(f"red_line_{state}"), _of_red_lines(red_lines[state], red_lines, ctx))
            for state in RED_LINES
        ),
        (t("red_line_items"), ctx.num(red_lines["waiting_items"])),
        (t("dep_team_cycles"), ctx.num(cycles.filter(pl.col("level") == "team").height)),
        (t("dep_longest_chain"), ctx.num(longest["chain_items"][0] if longest.height else 0)),
    ]
    figures = []
    if matrix.height:
        figures.append(Figure(t("dep_matrix_team_q"), _heatmap(matrix, "team", ctx)))
        figures.append(Figure(t("dep_network_q"), _network(matrix, ctx)))
    if org_matrix.height:
        figures.append(Figure(t("dep_matrix_org_q"), _heatmap(org_matrix, "org", ctx)))
    figures.append(_trend(ctx, edges))
    return Section(
        key="dependencies",
        title=t("dep_title"),
        lead=t("dep_lead"),
        headline=headline,
        figures=figures,
        tables=[
            (t("dep_red_table"), _red_table(red, ctx)),
            (t("dep_cycles_table"), _cycles_table(cycles, ctx)),
            (t("dep_chains_table"), _chains_table(chains, ctx)),
            (t("dep_bottleneck_table"), _bottleneck_table(bottlenecks, ctx)),
            (t("dep_team_bottleneck_table"), _team_bottleneck_table(team_bottlenecks, ctx)),
        ],
    )


def _of_red_lines(n: int, red_lines: dict[str, int], ctx: ReportContext) -> str:
    """A subset of the red lines says so: "15 of 41 red lines"."""
    return ctx.t("red_lines_of").format(n=ctx.num(n), total=ctx.num(red_lines["red_lines"]))


def _team_label(org: str | None, team: str | None) -> str:
    return f"{team or '?'} · {org or '?'}"


def _heatmap(matrix: pl.DataFrame, by: str, ctx: ReportContext) -> go.Figure:
    if by == "team":
        m = matrix.with_columns(
            pl.format(
                "{} · {}", pl.col("blocker_team"), pl.col("blocker_org").fill_null("?")
            ).alias("_b"),
            pl.format(
                "{} · {}", pl.col("dependent_team"), pl.col("dependent_org").fill_null("?")
            ).alias("_d"),
        )
    else:
        m = matrix.with_columns(
            pl.col("blocker_org").fill_null("?").alias("_b"),
            pl.col("dependent_org").fill_null("?").alias("_d"),
        )
    volume = (
        pl.concat(
            [m.select(pl.col("_b").alias("n"), "open"), m.select(pl.col("_d").alias("n"), "open")]
        )
        .group_by("n")
        .agg(pl.col("open").sum())
        .sort(["open", "n"], descending=[True, False])
    )
    keep = sorted(volume.head(MAX_HEATMAP_TEAMS)["n"].to_list())
    m = m.filter(pl.col("_b").is_in(keep) & pl.col("_d").is_in(keep))
    rows = sorted(set(m["_b"].to_list()))
    cols = sorted(set(m["_d"].to_list()))
    ri = {r: i for i, r in enumerate(rows)}
    ci = {c: i for i, c in enumerate(cols)}
    z: list[list[float | None]] = [[None] * len(cols) for _ in rows]
    text: list[list[str]] = [[""] * len(cols) for _ in rows]
    for b, d, n, conflicts in m.select("_b", "_d", "open", "conflicts").iter_rows():
        z[ri[b]][ci[d]] = n
        text[ri[b]][ci[d]] = f"{n}" + (f" ({conflicts}!)" if conflicts else "")
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[esc(c) for c in cols],
            y=[esc(r) for r in rows],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="%{y} → %{x}: %{z}<extra></extra>",
            colorbar={"title": esc(ctx.t("dep_count"))},
        )
    )
    figure.update_layout(
        xaxis={"title": ctx.t("dep_dependent_team"), "tickangle": -45},
        yaxis={"title": ctx.t("dep_blocker_team"), "autorange": "reversed"},
        height=max(320, 22 * len(rows) + 160),
        margin={"l": 200, "r": 20, "t": 10, "b": 160},
    )
    return figure


def _network(matrix: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    """Teams on a circle grouped by organisation (one colour and legend entry per organisation),
    one arrow per team pair from the blocking to the waiting team (width = open dependencies, red
    when any is a conflict); a pair waiting both ways gets two arrows side by side. Readable at
    30+ teams: labels stay small and the arrows stop at the nodes."""
    t = ctx.t
    rows = (
        matrix.select(
            pl.col("blocker_org").fill_null(""),
            pl.col("blocker_team").fill_null(""),
            pl.col("dependent_org").fill_null(""),
            pl.col("dependent_team").fill_null(""),
            "open",
            "conflicts",
        )
        .sort(pl.all())  # the matrix's row order is not defined: the same report every time
        .rows()
    )
    nodes = sorted({(bo, bt) for bo, bt, *_ in rows} | {(do, dt) for _, _, do, dt, *_ in rows})
    pos = {
        node: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes)))
        for i, node in enumerate(nodes)
    }
    top = max([int(r[4]) for r in rows] + [1])
    pairs = {(r[0], r[1], r[2], r[3]) for r in rows}
    figure = go.Figure()
    midpoints: tuple[list[float], list[float], list[str]] = ([], [], [])
    # the arrows are set at once: plotly's add_annotation re-validates every earlier annotation
    # on each call (836 team pairs took 88 s at 10,000 items; one list takes a fraction of it)
    arrows: list[dict[str, object]] = []
    for bo, bt, do, dt, n, conflicts in rows:
        (x0, y0), (x1, y1) = pos[(bo, bt)], pos[(do, dt)]
        if (do, dt, bo, bt) in pairs:  # waits both ways: shift each arrow to its own side
            dx, dy = y1 - y0, x0 - x1
            norm = math.hypot(dx, dy) or 1.0
            x0, y0, x1, y1 = (x0 + 0.03 * dx / norm, y0 + 0.03 * dy / norm,
                              x1 + 0.03 * dx / norm, y1 + 0.03 * dy / norm)  # fmt: skip
        red = conflicts > 0
        arrows.append(
            {
                "x": x1,
                "y": y1,
                "ax": x0,
                "ay": y0,
                "xref": "x",
                "yref": "y",
                "axref": "x",
                "ayref": "y",
                "showarrow": True,
                "arrowhead": 2,
                "arrowsize": 1,
                "arrowwidth": 1 + round(4 * math.sqrt(n / top)),
                "arrowcolor": "#c62828" if red else "rgba(31,95,191,0.45)",
                "standoff": 7,
                "startstandoff": 7,
                "text": "",
            }
        )
        midpoints[0].append((x0 + x1) / 2)
        midpoints[1].append((y0 + y1) / 2)
        midpoints[2].append(
            esc(
                t("dep_network_pair").format(
                    dependent=f"{dt} · {do}", blocker=f"{bt} · {bo}", n=ctx.num(n),
                    conflicts=ctx.num(conflicts),
                )
            )
        )  # fmt: skip
    figure.update_layout(annotations=arrows)
    figure.add_trace(  # invisible points on the arrows carry their hover text
        go.Scatter(
            x=midpoints[0],
            y=midpoints[1],
            mode="markers",
            marker={"size": 10, "opacity": 0},
            hovertext=midpoints[2],
            hoverinfo="text",
            showlegend=False,
        )
    )
    degree: dict[tuple[str, str], int] = {}
    for bo, bt, do, dt, n, _ in rows:
        degree[(bo, bt)] = degree.get((bo, bt), 0) + int(n)
        degree[(do, dt)] = degree.get((do, dt), 0) + int(n)
    orgs = sorted({o for o, _ in nodes})
    colours = {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(orgs)}
    for org in orgs:
        members = [node for node in nodes if node[0] == org]
        figure.add_trace(
            go.Scatter(
                x=[pos[m][0] for m in members],
                y=[pos[m][1] for m in members],
                mode="markers+text",
                name=esc(org or "?"),
                text=[esc(team) for _, team in members],
                textposition="top center",
                textfont={"size": 9 if len(nodes) > 30 else 11},
                hovertext=[
                    f"{esc(team)} · {esc(org)}: {ctx.num(degree.get(m, 0))}"
                    for m in members
                    for team in [m[1]]
                ],
                hoverinfo="text",
                marker={
                    "size": [8 + 2 * math.sqrt(degree.get(m, 0)) for m in members],
                    "color": colours[org],
                    "line": {"width": 1, "color": "#ffffff"},
                },
            )
        )
    figure.update_layout(
        xaxis={"visible": False, "range": [-1.3, 1.3]},
        yaxis={"visible": False, "scaleanchor": "x", "range": [-1.2, 1.25]},
        height=660 if len(nodes) > 30 else 520,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"title": {"text": esc(t("organisation"))}, "orientation": "v"},
    )
    return figure


def _trend(ctx: ReportContext, edges: pl.DataFrame) -> Figure:
    """Snapshots per sync (metric_snapshots) from the second sync on; until then a sentence
    saying when the trend appears (one point on a time axis answers nothing)."""
    question = ctx.t("dep_trend_q")
    scope = f"organisation:{ctx.organisation}" if ctx.organisation else "all"
    wh = ctx.inputs.warehouse
    if wh is None:
        return Figure(question, None, trend_note(ctx, [ctx.inputs.as_of]))
    points = wh.query(
        "SELECT as_of, metric, value FROM metric_snapshots WHERE family = 'dependencies' "
        "AND scope = ? AND as_of <= ? AND metric IN ('cross_team_open', 'cross_org_open', "
        "'conflicts', 'unscheduled_blockers', 'at_risk') ORDER BY as_of",
        [scope, ctx.inputs.as_of],
    ).with_columns(pl.col("as_of").dt.convert_time_zone("UTC"))
    moments = points["as_of"].unique().sort().to_list()
    if len(moments) < 2:
        return Figure(question, None, trend_note(ctx, moments or [ctx.inputs.as_of]))
    red_states = ("conflicts", "unscheduled_blockers", "at_risk")  # the red lines, summed
    red_lines = (
        points.filter(pl.col("metric").is_in(red_states))
        .group_by("as_of")
        .agg(pl.lit("red_lines").alias("metric"), pl.col("value").sum())
    )
    points = pl.concat([points.filter(~pl.col("metric").is_in(red_states[1:])), red_lines]).sort(
        "as_of", maintain_order=True
    )
    labels = {
        "cross_team_open": ctx.t("dep_open"),
        "cross_org_open": ctx.t("dep_cross_org"),
        "red_lines": ctx.t("red_lines"),
        "conflicts": ctx.t("red_line_conflict"),
    }
    figure = go.Figure()
    for metric, label in labels.items():
        series = points.filter(pl.col("metric") == metric)
        figure.add_trace(
            go.Scatter(
                x=series["as_of"].to_list(),
                y=series["value"].to_list(),
                mode="lines+markers",
                name=esc(label),
                line={"color": "#c62828", "dash": "dot" if metric == "conflicts" else None}
                if metric in ("red_lines", "conflicts")
                else None,
            )
        )
    figure.update_layout(
        height=300,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=ctx.t("dep_sync")),
        yaxis={"title": ctx.t("dep_count"), "rangemode": "tozero"},
    )
    return Figure(question, figure)


def _red_table(red: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            t(f"dep_{r['timing']}") if r["timing"] in RED_LINES else r["timing"],
            r["slip_days"] if r["slip_days"] is not None else "",
            ctx.link(r["dependent_key"], r["dependent_url"], r["dependent_id"]),
            nowrap(_team_label(r["dependent_org"], r["dependent_team"])),
            nowrap(ctx.day(r["dependent_planned_end"])) if r["dependent_planned_end"] else "",
            ctx.link(r["blocker_key"], r["blocker_url"], r["blocker_id"]),
            nowrap(_team_label(r["blocker_org"], r["blocker_team"])),
            nowrap(ctx.day(r["blocker_planned_end"])) if r["blocker_planned_end"] else "",
        ]
        for r in red.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("dep_timing"),
        t("dep_slip"),
        t("dep_dependent"),
        t("dep_dependent_team"),
        t("dep_planned_end"),
        t("dep_blocker"),
        t("dep_blocker_team"),
        t("dep_planned_end"),
    ]
    return Table(columns, rows, more=max(0, red.height - MAX_ROWS))


def _cycles_table(cycles: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    ordered = cycles.sort(["level", "size"], descending=[True, True])  # teams first
    rows = [
        [
            t(f"dep_level_{r['level']}"),
            r["size"],
            ", ".join(str(m) for m in r["members"][:20]) + (" …" if r["size"] > 20 else ""),
            ", ".join(r["organisations"]),
        ]
        for r in ordered.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [t("dep_level"), t("dep_count"), t("dep_members"), t("organisations")]
    return Table(columns, rows, more=max(0, cycles.height - MAX_ROWS))


def _chains_table(chains: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            t("dep_all")
            if r["scope"] == "all"
            else nowrap(ctx.item_label(r["epic_key"], r["epic_id"])),
            r["chain_items"],
            r["planned_days"] if r["planned_days"] is not None else "",
            f"{ctx.item_label(r['head_key'], r['head_id'])} "
            f"({_team_label(r['head_org'], r['head_team'])})",
            " → ".join(r["path"][-12:]) if r["path"] else "",
        ]
        for r in chains.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("dep_scope"),
        t("dep_chain_items"),
        t("dep_planned_days"),
        t("dep_head"),
        t("dep_path"),
    ]
    return Table(columns, rows, more=max(0, chains.height - MAX_ROWS))


def _count(value: int, exact: bool, ctx: ReportContext) -> str:
    return ctx.num(value) if exact else f"~{ctx.num(value)} {ctx.t('dep_approx')}"


def _bottleneck_table(items: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            ctx.link(r["key"], r["url"], r["item_id"]),
            r["title"] or "",
            nowrap(_team_label(r["organisation"], r["team"])),
            r["direct_dependents"] or 0,
            _count(r["dependents"], r["exact"], ctx),
            ctx.num(r["dependents_estimate"], 0),
            ctx.num(r["weight"], 0),
        ]
        for r in items.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("dep_blocker"),
        t("title"),
        t("team"),
        t("dep_direct"),
        t("dep_transitive"),
        t("dep_estimate"),
        t("dep_weight"),
    ]
    return Table(columns, rows, more=max(0, items.height - MAX_ROWS))


def _team_bottleneck_table(teams: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            nowrap(_team_label(r["organisation"], r["team"])),
            r["direct_dependents"] or 0,
            _count(r["dependents"], r["exact"], ctx),
            ctx.num(r["dependents_estimate"], 0),
            ctx.num(r["weight"], 0),
        ]
        for r in teams.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [t("team"), t("dep_direct"), t("dep_transitive"), t("dep_estimate"), t("dep_weight")]
    return Table(columns, rows, more=max(0, teams.height - MAX_ROWS))
