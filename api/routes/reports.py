"""The steering report over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from pmolens.api.deps import Day, RuntimeDep, require_viewer
from pmolens.reports.steering import build_report

router = APIRouter(tags=["reports"], dependencies=[Depends(require_viewer)])


@router.get("/reports/steering", response_class=HTMLResponse)
async def steering(
    runtime: RuntimeDep,
    lang: Annotated[Literal["en", "nl"], Query()] = "en",
    organisation: Annotated[str | None, Query()] = None,
    as_of: Annotated[
        Day | None, Query(description="Report as of this date (default: now).")
    ] = None,
    plotly: Annotated[Literal["inline", "cdn"], Query()] = "inline",
) -> HTMLResponse:
    moment = datetime.combine(as_of, time(23, 59, 59), tzinfo=UTC) if as_of else None
    try:
        page = await asyncio.to_thread(
            build_report,
            runtime.warehouse,
            runtime.settings,
            lang=lang,
            organisation=organisation,
            as_of=moment,
            plotly=plotly,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return HTMLResponse(page)
