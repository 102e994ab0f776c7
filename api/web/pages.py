"""The pages of the web app: sign-in, the names behind every figure (organisation, team, epic,
item), the lists behind every counter, the dependency matrix and saved views.

Every page reads the same analyses the API and the report read (``Page.get``), as of the view's
moment; none writes anything except the viewer's own bookmarks.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from pmolens.api.deps import Format, Limit, Offset, table
from pmolens.api.web.lists import LISTS, rows
from pmolens.api.web.page import Page, PageDep, PageError, bare_page, redirect, safe_next
from pmolens.api.web.session import csrf_ok, form, sign_in, sign_out, viewer_of
from pmolens.warehouse.transforms.dependencies import team_hindering, team_impediments
from pmolens.warehouse.transforms.dependencies.chains import epic_chain

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Path(max_length=200)]


# ------------------------------------------------------------------------------ sign-in


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(
    request: Request,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    lang: Annotated[str | None, Query(pattern="^(en|nl)$")] = None,
) -> Response:
    return _signin_page(request, safe_next(next), lang, failed=None)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    values = await form(request)
    target = safe_next(values.get("next"))
    lang = values.get("lang") if values.get("lang") in ("en", "nl") else None
    if not csrf_ok(request, None, values.get("csrf", "")):
        return _signin_page(request, target, lang, failed="form_expired", status=400)
    response = redirect(target)
    if sign_in(request, response, values.get("token", "")) is None:
        return _signin_page(request, target, lang, failed="sign_in_failed", status=401)
    return response


def _signin_page(
    request: Request, target: str, lang: str | None, failed: str | None, status: int = 200
) -> Response:
    page = bare_page(request, lang, anonymous=True)
    return page.render("signin.html.j2", status=status, next=target, failed=failed)


@router.post("/signout")
async def signout(request: Request) -> Response:
    values = await form(request)
    viewer = viewer_of(request)
    if not csrf_ok(request, viewer, values.get("csrf", "")):
        raise PageError(400, "form_expired")
    response = redirect("/signin")
    sign_out(response)
    return response


# ------------------------------------------------------------------------- saved views


@router.get("/views", response_class=HTMLResponse)
def views(page: PageDep) -> Response:
    saved = page.runtime.warehouse.saved_views(page.viewer.name)
    return page.render("views.html.j2", saved=saved)


@router.post("/views")
async def save_view(page: PageDep) -> Response:
    values = await form(page.request)
    if not csrf_ok(page.request, page.viewer, values.get("csrf", "")):
        raise PageError(400, "form_expired")
    name = values.get("name", "").strip()[:100]
    url = safe_next(values.get("url"))
    if values.get("delete"):
        page.runtime.warehouse.delete_view(page.viewer.name, values["delete"][:100])
    elif name:
        page.runtime.warehouse.save_view(page.viewer.name, name, url)
    return redirect(page.url("/views"))


# ------------------------------------------------------------------------------- lists


@router.get("/list/{name}", response_class=HTMLResponse)
def list_page(
    page: PageDep,
    name: Name,
    limit: Annotated[Limit, Query()] = 50,
    offset: Annotated[Offset, Query()] = 0,
    format: Annotated[Format | None, Query()] = None,
    blocker_team: Annotated[str | None, Query(max_length=200)] = None,
    dependent_team: Annotated[str | None, Query(max_length=200)] = None,
    level: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    spec = LISTS.get(name)
    if spec is None:
        raise PageError(404, "unknown_list", name=name, known=", ".join(LISTS))
    f = page.filters
    frame = rows(page.get(spec.analysis), spec, f.organisation, f.team, f.epic)
    for column, value in (
        ("blocker_team", blocker_team),
        ("dependent_team", dependent_team),
        ("level", level),
    ):
        if value is not None and column in frame.columns:
            frame = frame.filter(pl.col(column) == value)
    if format is not None and format != Format.json:
        exported = table(frame, format, name.replace("-", "_"))
        assert exported is not None
        return exported
    shown = frame.slice(offset, limit)
    return page.render(
        "list.html.j2",
        name=name,
        title=page.t(f"list_{name.replace('-', '_')}"),
        columns=list(spec.columns),
        rows=shown.to_dicts(),
        links=spec.links,
        total=frame.height,
        offset=offset,
        limit=limit,
    )


# ------------------------------------------------------------------------- organisation


@router.get("/org/{name}", response_class=HTMLResponse)
def organisation_page(page: PageDep, name: Name) -> Response:
    known = page.organisations()
    if name not in known:
        raise PageError(404, "unknown_organisation", name=name, known=", ".join(known))
    scoped = page.with_filters(organisation=name)
    teams = [team for org, team in page.teams() if org == name]
    sos = page.get("dependency_sos").filter(pl.col("organisation") == name)
    health = page.get("backlog_health").filter(
        (pl.col("by") == "team") & (pl.col("organisation") == name)
    )
    epics = page.get("forecast_epics").filter(pl.col("organisation") == name)
    return page.render(
        "organisation.html.j2",
        name=name,
        scoped=scoped,
        teams=teams,
        sos=sos.to_dicts(),
        health={r["scope"]: r for r in health.to_dicts()},
        epics=epics.to_dicts(),
    )


# --------------------------------------------------------------------------------- team


@router.get("/team/{name}", response_class=HTMLResponse)
def team_page(
    page: PageDep,
    name: Name,
) -> Response:
    sos = page.get("dependency_sos").filter(pl.col("team") == name)
    if page.filters.organisation:
        sos = sos.filter(pl.col("organisation") == page.filters.organisation)
    if sos.height == 0:
        raise PageError(404, "unknown_team", name=name)
    summary = sos.row(0, named=True)
    body = page.fragment("team_body.html.j2", ("team", name), lambda: team_values(page, summary))
    return page.render("team.html.j2", name=name, org=summary["organisation"], body=body)


def team_values(page: Page, summary: dict[str, Any]) -> dict[str, Any]:
    """The team page's content: the same for every viewer, kept per generation and view."""
    name, org = summary["team"], summary["organisation"]
    edges = page.get("dependency_edges")
    health = page.get("backlog_health").filter(
        (pl.col("by") == "team") & (pl.col("scope") == name) & (pl.col("organisation") == org)
    )
    flow = page.get("flow_percentiles").filter(
        (pl.col("team") == name) & (pl.col("organisation") == org)
    )
    impediments = page.get("impediments").filter(
        (pl.col("team") == name) & (pl.col("organisation") == org)
    )
    findings = page.get("findings").filter(
        (pl.col("team") == name)
        & (pl.col("organisation") == org)
        & (pl.col("status") != "resolved")
    )
    return {
        "name": name,
        "org": org,
        "summary": summary,
        "hindering": team_hindering(edges, name, org).head(50).to_dicts(),
        "impeded": team_impediments(edges, name, org).head(50).to_dicts(),
        "health": health.row(0, named=True) if health.height else None,
        "flow": flow.row(0, named=True) if flow.height else None,
        "impediments": impediments.sort("weight", descending=True).head(25).to_dicts(),
        "findings": _severity_first(findings).head(25).to_dicts(),
        "findings_total": findings.height,
        "impediments_total": impediments.height,
    }


def _severity_first(findings: pl.DataFrame) -> pl.DataFrame:
    order = {"critical": 0, "warning": 1, "info": 2}
    return findings.sort(
        pl.col("severity").replace_strict(order, default=3, return_dtype=pl.Int8), "key"
    )


# --------------------------------------------------------------------------------- epic


def _known_items(page: Page) -> pl.DataFrame | None:
    """The work items as known at the view's as-of moment (None: now, read with SQL)."""
    if page.filters.as_of is None:
        return None
    return page.runtime.results.inputs(page.filters.as_of).work_items


def item_row(page: Page, item_id: str) -> dict[str, Any] | None:
    """One work item by id or key, as the view's moment knew it."""
    known = _known_items(page)
    if known is not None:
        found = known.filter((pl.col("item_id") == item_id) | (pl.col("key") == item_id))
        found = found.sort(pl.col("item_id") != item_id).head(1)
    else:
        found = page.runtime.warehouse.query(
            "SELECT * FROM work_items WHERE NOT is_deleted AND (item_id = ? OR key = ?) "
            "ORDER BY item_id = ? DESC LIMIT 1",
            [item_id, item_id, item_id],
        )
    return found.row(0, named=True) if found.height else None


ITEM_COLUMNS = (
    "item_id",
    "key",
    "title",
    "level",
    "raw_status",
    "status_category",
    "team",
    "estimate",
    "url",
)


def descendants(page: Page, root: str, max_depth: int = 6) -> pl.DataFrame:
    """The items under ``root`` (children, grandchildren, ...), open first in rank order: a walk
    down ``parent_id`` over the items as the view's moment knew them (kept per generation)."""
    known = _known_items(page)
    if known is None:
        known = page.cached(
            "items",
            lambda: page.runtime.warehouse.query(
                f"SELECT {', '.join(ITEM_COLUMNS)}, parent_id, rank FROM work_items "
                "WHERE NOT is_deleted"
            ),
        )
    found, frontier = [], [root]
    for _ in range(max_depth):
        level = known.filter(pl.col("parent_id").is_in(frontier))
        if level.height == 0:
            break
        found.append(level)
        frontier = level["item_id"].to_list()
    if not found:
        return known.select(ITEM_COLUMNS).clear()
    return (
        pl.concat(found)
        .sort(pl.col("status_category") == "done", "rank", "key", nulls_last=True)
        .select(ITEM_COLUMNS)
    )


@router.get("/epic/{epic_id}", response_class=HTMLResponse)
def epic_page(page: PageDep, epic_id: Name) -> Response:
    epic = item_row(page, epic_id)
    if epic is None:
        raise PageError(404, "unknown_item", name=epic_id)
    found = epic["item_id"]
    body = page.fragment("epic_body.html.j2", ("epic", found), lambda: epic_values(page, epic))
    return page.render("epic.html.j2", epic=epic, body=body)


def epic_values(page: Page, epic: dict[str, Any]) -> dict[str, Any]:
    """What the epic page shows below its title (the same for every viewer: kept per generation,
    as-of and language by ``Page.fragment``)."""
    epic_id = epic["item_id"]
    forecast = page.get("forecast_epics").filter(pl.col("epic_id") == epic_id)
    edges = page.get("dependency_edges")
    items = descendants(page, epic_id)
    findings = page.get("findings").filter(
        pl.col("item_id").is_in([epic_id, *items["item_id"].to_list()])
        & (pl.col("status") != "resolved")
    )
    row = forecast.row(0, named=True) if forecast.height else None
    return {
        "epic": epic,
        "forecast": row,
        "upstream": epic_chain(edges, epic_id, "upstream").to_dicts(),
        "downstream": epic_chain(edges, epic_id, "downstream").to_dicts(),
        "items": items.head(200).to_dicts(),
        "items_total": items.height,
        "findings": _severity_first(findings).head(50).to_dicts(),
        "fan": fan_spec(page, row) if row else "{}",
    }


def fan_spec(page: Page, f: dict[str, Any]) -> str:
    """The epic's forecast as a small chart: P50, P85, P95 on a date axis, the target date as a
    line (plotly JSON, drawn by static/app.js)."""
    points = [
        ("P50", f["p50"], "#1e7b3a"),
        ("P85", f["p85"], "#b35c00"),
        ("P95", f["p95"], "#b3261e"),
    ]
    points = [p for p in points if p[1] is not None]
    shapes, annotations = [], []
    if f.get("target_date"):
        day = f["target_date"].isoformat()
        shapes.append(
            {
                "type": "line",
                "x0": day,
                "x1": day,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": "#1d2433", "dash": "dot"},
            }
        )
        annotations.append(
            {
                "x": day,
                "y": 1,
                "yref": "paper",
                "text": page.t("col_target_date"),
                "showarrow": False,
                "yanchor": "bottom",
            }
        )
    spec = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": [p[1].isoformat() for p in points],
                "y": [0] * len(points),
                "text": [f"{p[0]}<br>{page.day(p[1])}" for p in points],
                "textposition": "top center",
                "marker": {"size": 14, "color": [p[2] for p in points]},
                "hoverinfo": "text",
            }
        ],
        "layout": {
            "height": 170,
            "margin": {"l": 20, "r": 20, "t": 30, "b": 30},
            "yaxis": {"visible": False, "range": [-0.5, 1.2]},
            "xaxis": {"type": "date"},
            "shapes": shapes,
            "annotations": annotations,
            "showlegend": False,
        },
    }
    return json.dumps(spec).replace("</", "<\\/")


def epic_blockers(edges: pl.DataFrame, epic_id: str) -> list[dict[str, Any]]:
    """Open items of other epics (or none) that this epic's items wait on: what a what-if can
    pin or drop."""
    rows = edges.filter(
        pl.col("open")
        & (pl.col("dependent_epic") == epic_id)
        & (pl.col("blocker_epic").fill_null("") != epic_id)
    )
    return (
        rows.select(
            "blocker_id",
            "blocker_key",
            "blocker_title",
            "dependent_id",
            "dependent_key",
            "timing",
            "blocker_planned_end",
        )
        .unique(["blocker_id", "dependent_id"])
        .sort("blocker_key", "dependent_key")
        .to_dicts()
    )


# --------------------------------------------------------------------------------- item


@router.get("/item/{item_id}", response_class=HTMLResponse)
def item_page(page: PageDep, item_id: Name) -> Response:
    item = item_row(page, item_id)
    if item is None:
        raise PageError(404, "unknown_item", name=item_id)
    edges = page.get("dependency_edges")
    blocks = edges.filter(pl.col("blocker_id") == item["item_id"])
    blocked_by = edges.filter(pl.col("dependent_id") == item["item_id"])
    findings = page.get("findings").filter(pl.col("item_id") == item["item_id"])
    return page.render(
        "item.html.j2",
        item=item,
        blocks=blocks.to_dicts(),
        blocked_by=blocked_by.to_dicts(),
        findings=_severity_first(findings).to_dicts(),
    )


# ------------------------------------------------------------------------------- matrix


@router.get("/matrix", response_class=HTMLResponse)
def matrix_page(page: PageDep) -> Response:
    cells = page.get("dependency_matrix_team")
    if page.filters.organisation:
        org = page.filters.organisation
        cells = cells.filter((pl.col("blocker_org") == org) | (pl.col("dependent_org") == org))
    blockers = sorted(
        set(cells.select("blocker_org", "blocker_team").iter_rows()),
        key=lambda r: (r[0] or "", r[1] or ""),
    )
    dependents = sorted(
        set(cells.select("dependent_org", "dependent_team").iter_rows()),
        key=lambda r: (r[0] or "", r[1] or ""),
    )
    lookup = {
        (r["blocker_org"], r["blocker_team"], r["dependent_org"], r["dependent_team"]): r
        for r in cells.to_dicts()
    }
    return page.render("matrix.html.j2", blockers=blockers, dependents=dependents, cells=lookup)
