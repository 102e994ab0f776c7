"""``/what-if/{epic}``: pin a blocker's finish day, drop a dependency or move the epic to another
team, and see the re-forecast beside the current one. Nothing is written; the page's URL is the
scenario (the same ``pin`` / ``drop`` texts as ``GET /forecast/epics/{epic}/what-if``), so it
can be shared.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pmolens.api.web.page import PageDep, PageError
from pmolens.api.web.pages import epic_blockers
from pmolens.warehouse.analyses.forecast import parse_change, what_if
from pmolens.warehouse.transforms.forecast import WhatIfError

router = APIRouter(include_in_schema=False)

MAX_CHANGES = 20


@router.get("/what-if/{epic_id}", response_class=HTMLResponse)
async def what_if_page(
    page: PageDep,
    epic_id: Annotated[str, Path(max_length=300)],
    pin: Annotated[list[str] | None, Query(max_length=MAX_CHANGES)] = None,
    drop: Annotated[list[str] | None, Query(max_length=MAX_CHANGES)] = None,
    move_to: Annotated[str | None, Query(max_length=200)] = None,
    pin_item: Annotated[str | None, Query(max_length=300)] = None,
    pin_day: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    pins = [p for p in (pin or []) if p]
    if pin_item and pin_day:  # the form's two fields make one pin
        pins.append(f"{pin_item}={pin_day}")
    drops = [d for d in (drop or []) if d]
    inputs = await run_in_threadpool(page.runtime.results.inputs, page.filters.as_of)
    error = None
    answer: dict[str, Any] | None = None
    try:
        change = parse_change(pins, drops, move_to or None)
        answer = await run_in_threadpool(
            page.cached, ("what-if", epic_id, change), lambda: what_if(inputs, epic_id, change)
        )
    except WhatIfError as failed:
        if failed.code == "unknown_epic":
            raise PageError(404, "unknown_item", name=epic_id) from None
        error = _message(page.t, failed)
        try:  # show the current forecast beside the refusal
            answer = await run_in_threadpool(what_if, inputs, epic_id, parse_change())
        except WhatIfError:
            raise PageError(404, "unknown_item", name=epic_id) from None
    assert answer is not None
    edges = page.get("dependency_edges")
    share = page.url(
        "/what-if/" + quote(answer["epic_id"], safe=""),
        pin=pins or None,
        drop=drops or None,
        move_to=move_to or None,
    )
    return page.render(
        "whatif.html.j2",
        answer=answer,
        error=error,
        pins=pins,
        drops=drops,
        move_to=move_to,
        share=share,
        blockers=epic_blockers(edges, answer["epic_id"]),
        teams=sorted({team for _, team in page.teams()}),
    )


def _message(t: Any, failed: WhatIfError) -> str:
    key = f"whatif_error_{failed.code}"
    try:
        return str(t(key)).format(subject=failed.subject)
    except KeyError:
        return str(t("whatif_error")).format(subject=failed.subject)
