"""Dependencies between teams and organisations: matrix heatmaps, the team network, the red
lines (timing conflicts), cycles, the critical chain, bottlenecks and the trend.
Definitions: docs/dependencies.md."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc, link_cell
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
            "nl": "Welke teams wachten op welke teams (open afhankelijkheden, blokkeerder in rijen)?",
        },
        "dep_matrix_org_q": {
            "en": "How much do organisations wait on each other?",
            "nl": "Hoeveel wachten organisaties op elkaar?",
        },
        "dep_network_q": {
            "en": "How are teams connected (line width = open dependencies, red = conflicts)?",
            "nl": "Hoe zijn teams verbonden (lijndikte = open afhankelijkheden, rood = conflicten)?",
        },
        "dep_trend_q": {
            "en": "Are dependencies and red lines (conflicts dotted) going down from sync to sync?",
            "nl": "Nemen afhankelijkheden en rode lijnen (conflicten gestippeld) af per "
            "synchronisatie?",
        },
        "dep_blocker": {"en": "Blocker", "nl": "Blokkeerder"},
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
            "nl": "blokkeerder niet gepland",
        },
        "dep_red_table": {
            "en": "Red lines, by slip (re-plan one side in the Scrum of Scrums)",
            "nl": "Rode lijnen, op uitloop (herplan een kant in de Scrum of Scrums)",
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
        "dep_head": {"en": "Head (start here)", "nl": "Begin (start hier)"},
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
        (t("dep_open"), f"{cross.height:,}"),
        (t("dep_cross_org"), f"{cross.filter(pl.col('cross_org')).height:,}"),
        (t("red_lines"), f"{red_lines['red_lines']:,}"),
        *(
            (t(f"red_line_{state}"), _of_red_lines(red_lines[state], red_lines, ctx))
            for state in RED_LINES
        ),
        (t("red_line_items"), f"{red_lines['waiting_items']:,}"),
        (t("dep_team_cycles"), str(cycles.filter(pl.col("level") == "team").height)),
        (t("dep_longest_chain"), str(longest["chain_items"][0]) if longest.height else "0"),
    ]
    figures = []
    if matrix.height:
        figures.append(Figure(t("dep_matrix_team_q"), _heatmap(matrix, "team", ctx)))
        figures.append(Figure(t("dep_network_q"), _network(matrix, ctx)))
    if org_matrix.height:
        figures.append(Figure(t("dep_matrix_org_q"), _heatmap(org_matrix, "org", ctx)))
    trend = _trend(ctx, edges)
    if trend is not None:
        figures.append(Figure(t("dep_trend_q"), trend))
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
    return ctx.t("red_lines_of").format(n=f"{n:,}", total=f"{red_lines['red_lines']:,}")


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
    """Teams on a circle grouped by organisation; one trace per width band (plotly draws one
    width per trace), red traces for pairs with conflicts. Readable at 30+ teams."""
    pairs = matrix.with_columns(
        pl.struct("blocker_org", "blocker_team").alias("_b"),
        pl.struct("dependent_org", "dependent_team").alias("_d"),
    )
    nodes = sorted(
        {(r["blocker_org"] or "", r["blocker_team"] or "") for r in pairs["_b"].to_list()}
        | {(r["dependent_org"] or "", r["dependent_team"] or "") for r in pairs["_d"].to_list()}
    )
    pos = {
        node: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes)))
        for i, node in enumerate(nodes)
    }
    most = pairs["open"].cast(pl.Int64).max()
    top = max(1, most if isinstance(most, int) else 1)
    bands: dict[tuple[int, bool], tuple[list[float | None], list[float | None]]] = {}
    for bo, bt, do, dt, n, conflicts in pairs.select(
        "blocker_org", "blocker_team", "dependent_org", "dependent_team", "open", "conflicts"
    ).iter_rows():
        width = 1 + round(5 * math.sqrt(n / top))
        xs, ys = bands.setdefault((width, conflicts > 0), ([], []))
        (x0, y0), (x1, y1) = pos[(bo or "", bt or "")], pos[(do or "", dt or "")]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    figure = go.Figure()
    for (width, red), (xs, ys) in sorted(bands.items()):
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"width": width, "color": "#c62828" if red else "rgba(31,95,191,0.45)"},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    degree = (
        pl.concat(
            [
                matrix.select(
                    pl.col("blocker_org").alias("o"), pl.col("blocker_team").alias("t"), "open"
                ),
                matrix.select(
                    pl.col("dependent_org").alias("o"), pl.col("dependent_team").alias("t"), "open"
                ),
            ]
        )
        .group_by("o", "t")
        .agg(pl.col("open").sum())
    )
    deg = {(o or "", t or ""): n for o, t, n in degree.iter_rows()}
    orgs = sorted({o for o, _ in nodes})
    figure.add_trace(
        go.Scatter(
            x=[pos[n][0] for n in nodes],
            y=[pos[n][1] for n in nodes],
            mode="markers+text",
            text=[esc(t) for _, t in nodes],
            textposition="top center",
            textfont={"size": 9 if len(nodes) > 30 else 11},
            hovertext=[f"{esc(t)} · {esc(o)}: {deg.get((o, t), 0)}" for o, t in nodes],
            hoverinfo="text",
            marker={
                "size": [8 + 2 * math.sqrt(deg.get(n, 0)) for n in nodes],
                "color": [orgs.index(o) for o, _ in nodes],
                "colorscale": "Viridis",
            },
            showlegend=False,
        )
    )
    figure.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        height=620 if len(nodes) > 30 else 480,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure


def _trend(ctx: ReportContext, edges: pl.DataFrame) -> go.Figure | None:
    """Snapshots per sync (when the report has the warehouse), else this sync's figures."""
    scope = f"organisation:{ctx.organisation}" if ctx.organisation else "all"
    wh = ctx.inputs.warehouse
    points = pl.DataFrame(
        schema={"as_of": pl.Datetime("us", "UTC"), "metric": pl.String, "value": pl.Float64}
    )
    if wh is not None:
        points = wh.query(
            "SELECT as_of, metric, value FROM metric_snapshots WHERE family = 'dependencies' "
            "AND scope = ? AND metric IN ('cross_team_open', 'cross_org_open', 'conflicts', "
            "'unscheduled_blockers', 'at_risk') ORDER BY as_of",
            [scope],
        ).with_columns(pl.col("as_of").dt.convert_time_zone("UTC"))
        red_states = ("conflicts", "unscheduled_blockers", "at_risk")  # the red lines, summed
        red_lines = (
            points.filter(pl.col("metric").is_in(red_states))
            .group_by("as_of")
            .agg(pl.lit("red_lines").alias("metric"), pl.col("value").sum())
        )
        points = pl.concat(
            [points.filter(~pl.col("metric").is_in(red_states[1:])), red_lines]
        ).sort("as_of", maintain_order=True)
    if points.height == 0:
        if edges.height == 0:
            return None
        open_ = edges.filter(pl.col("open"))
        headline = red_line_headline(edges)
        now = {
            "cross_team_open": open_.filter(pl.col("cross_team").fill_null(False)).height,
            "cross_org_open": open_.filter(pl.col("cross_org").fill_null(False)).height,
            "red_lines": headline["red_lines"],
            "conflicts": headline["conflict"],
        }
        points = pl.DataFrame(
            {
                "as_of": [ctx.inputs.as_of] * len(now),
                "metric": list(now),
                "value": [float(v) for v in now.values()],
            }
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
        xaxis={"title": ctx.t("dep_sync")},
        yaxis={"title": ctx.t("dep_count"), "rangemode": "tozero"},
    )
    return figure


def _red_table(red: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            t(f"dep_{r['timing']}") if r["timing"] in RED_LINES else r["timing"],
            r["slip_days"] if r["slip_days"] is not None else "",
            link_cell(r["dependent_key"], r["dependent_url"], r["dependent_id"]),
            _team_label(r["dependent_org"], r["dependent_team"]),
            r["dependent_planned_end"].isoformat() if r["dependent_planned_end"] else "",
            link_cell(r["blocker_key"], r["blocker_url"], r["blocker_id"]),
            _team_label(r["blocker_org"], r["blocker_team"]),
            r["blocker_planned_end"].isoformat() if r["blocker_planned_end"] else "",
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
            t("dep_all") if r["scope"] == "all" else (r["epic_key"] or r["epic_id"] or ""),
            r["chain_items"],
            r["planned_days"] if r["planned_days"] is not None else "",
            f"{r['head_key'] or r['head_id']} ({_team_label(r['head_org'], r['head_team'])})",
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
    return f"{value:,}" if exact else f"~{value:,} {ctx.t('dep_approx')}"


def _bottleneck_table(items: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            link_cell(r["key"], r["url"], r["item_id"]),
            r["title"] or "",
            _team_label(r["organisation"], r["team"]),
            r["direct_dependents"] or 0,
            _count(r["dependents"], r["exact"], ctx),
            f"{r['dependents_estimate']:.0f}",
            f"{r['weight']:.0f}",
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
            _team_label(r["organisation"], r["team"]),
            r["direct_dependents"] or 0,
            _count(r["dependents"], r["exact"], ctx),
            f"{r['dependents_estimate']:.0f}",
            f"{r['weight']:.0f}",
        ]
        for r in teams.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [t("team"), t("dep_direct"), t("dep_transitive"), t("dep_estimate"), t("dep_weight")]
    return Table(columns, rows, more=max(0, teams.height - MAX_ROWS))
