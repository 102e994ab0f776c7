"""The steering report over HTTP."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from pmolens.api.deps import AS_OF_DESCRIPTION, AsOfMoment, RuntimeDep, require_viewer
from pmolens.reports.steering import build_report

router = APIRouter(tags=["reports"], dependencies=[Depends(require_viewer)])


@router.get("/reports/steering", response_class=HTMLResponse)
async def steering(
    runtime: RuntimeDep,
    lang: Annotated[Literal["en", "nl"], Query()] = "en",
    organisation: Annotated[str | None, Query()] = None,
    as_of: Annotated[AsOfMoment | None, Query(description=AS_OF_DESCRIPTION)] = None,
    plotly: Annotated[Literal["inline", "cdn"], Query()] = "inline",
) -> HTMLResponse:
    try:
        page = await asyncio.to_thread(
            build_report,
            runtime.warehouse,
            runtime.settings,
            lang=lang,
            organisation=organisation,
            as_of=as_of,
            plotly=plotly,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return HTMLResponse(page)
