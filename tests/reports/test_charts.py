"""Charts that answer their question (issue 14, point 3): a team palette that keeps 40 teams apart,
net flow per organisation at its own sprint ends, trends only from the second sync on, a directed
team network with an organisation legend, hierarchy wedges with key and title, Azure DevOps items
with type and project, keys and dates that do not wrap. On the shared simulated chain
(tests/reports/conftest.py) and, for the palette, on names alone."""

from __future__ import annotations

import re

import polars as pl
import pytest

from pmolens.reports.blocks import PALETTE, ReportContext, team_styles
from pmolens.reports.sections import backlog, dependencies, kpis, portfolio
from pmolens.reports.steering import build_report
from pmolens.warehouse.analyses import Inputs
from pmolens.warehouse.results import kept_as_of
from tests.reports.conftest import Chain


def test_forty_teams_never_share_colour_and_symbol():
    teams = [f"team {i:02d}" for i in range(40)]
    styles = team_styles(teams)
    assert len({(s.colour, s.symbol) for s in styles.values()}) == 40
    assert len({(s.colour, s.pattern) for s in styles.values()}) == 40
    first = [styles[t].colour for t in teams[: len(PALETTE)]]
    assert len(set(first)) == len(PALETTE) >= 16  # up to 16 teams: colour alone tells them apart
    assert team_styles(teams[:5]) == {t: styles[t] for t in teams[:5]}  # stable by position


@pytest.fixture(scope="module")
def ctx(demo_chain: Chain) -> ReportContext:
    wh = demo_chain.warehouse
    kept, names = kept_as_of(wh, wh.generation())
    assert kept is not None
    inputs = Inputs.known_at(wh.frames(), demo_chain.settings, kept, wh)
    return ReportContext(inputs, "nl", None, pl.DataFrame(), stored=names)


def _figure(section, question_key: str, ctx: ReportContext):
    question = ctx.t(question_key)
    return next(f for f in section.figures if f.question == question)


def test_net_flow_has_one_panel_per_organisation_at_its_own_sprint_ends(ctx):
    figure = _figure(backlog.build(ctx), "backlog_net_flow_q", ctx).figure
    net = ctx.result("backlog_net_flow").filter(pl.col("closed"))
    orgs = sorted(net["organisation"].drop_nulls().unique().to_list())
    titles = [a.text for a in figure.layout.annotations]
    assert titles == orgs and len(orgs) >= 2
    inflow = [tr for tr in figure.data if tr.type == "bar" and tr.legendgroup == "intake_items"]
    assert len(inflow) == len(orgs)
    for org, trace in zip(orgs, inflow, strict=True):
        ends = net.filter(pl.col("organisation") == org)["end"].dt.date().unique().sort()
        assert list(trace.x) == ends.to_list(), org  # only this organisation's sprint ends
    names = {tr.name for tr in figure.data}
    assert {"Instroom", "Uitstroom"} <= names


def test_trends_wait_for_the_second_sync(ctx):
    moments = ctx.inputs.warehouse.query(
        "SELECT DISTINCT as_of FROM metric_snapshots WHERE family = 'dependencies'"
    )
    assert moments.height == 1  # one refresh so far
    for section, key in ((dependencies, "dep_trend_q"), (kpis, "kpi_trend_q")):
        figure = _figure(section.build(ctx), key, ctx)
        assert figure.figure is None
        assert figure.note.startswith("De trend verschijnt vanaf de tweede synchronisatie")
        assert re.search(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2} UTC", figure.note)


def test_the_team_network_is_directed_with_an_organisation_legend(ctx):
    figure = _figure(dependencies.build(ctx), "dep_network_q", ctx).figure
    arrows = [a for a in figure.layout.annotations if a.showarrow]
    matrix = ctx.result("dependency_matrix_team")
    assert len(arrows) == matrix.height > 0
    assert all(a.arrowhead and a.axref == "x" for a in arrows)
    red = {a.arrowcolor for a in arrows if a.arrowcolor == "#c62828"}
    assert bool(red) == bool(matrix["conflicts"].sum())
    legend = [tr.name for tr in figure.data if tr.showlegend is not False and tr.name]
    orgs = sorted(
        set(matrix["blocker_org"].drop_nulls()) | set(matrix["dependent_org"].drop_nulls())
    )
    assert legend == orgs
    assert len({tr.marker.color for tr in figure.data if tr.name in orgs}) == len(orgs)


def test_hierarchy_wedges_name_key_and_title(ctx):
    figure = _figure(portfolio.build(ctx), "hierarchy_question", ctx).figure
    sunburst = figure.data[0]
    tree = ctx.result("portfolio").filter(pl.col("level") == "epic")
    epic = tree.row(0, named=True)
    label = sunburst.labels[list(sunburst.ids).index(epic["item_id"])]
    assert label.startswith(ctx.item_label(epic["key"], epic["item_id"]))
    assert (epic["title"] or "")[:10] in label


def test_azure_devops_items_show_type_and_project(ctx):
    ado = ctx.inputs.work_items.filter(pl.col("key").str.contains(r"^\d+$"))
    assert ado.height, "the demo chain has an Azure DevOps source"
    row = ado.row(0, named=True)
    label = ctx.item_label(row["key"], row["item_id"])
    assert label == f"{row['raw_type']} {row['key']} · {row['project']}"
    assert ctx.item_label("NW-1") == "NW-1"


def test_keys_and_dates_do_not_wrap(demo_chain: Chain):
    page = build_report(demo_chain.warehouse, demo_chain.settings, lang="nl", plotly="cdn")
    links = re.findall(r"<td( class=\"nowrap\")?><a href=", page)
    assert links and all(links)
    dates = re.findall(r"<td( class=\"nowrap\")?>\d{2}-\d{2}-\d{4}</td>", page)
    assert dates and all(dates)
    assert "td.nowrap { white-space: nowrap; }" in page
