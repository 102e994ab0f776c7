"""The steering report over HTTP: the HTML page and the same report printed to PDF."""

from __future__ import annotations

import asyncio
import weakref
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from pmolens.api.deps import AS_OF_DESCRIPTION, AsOfMoment, RuntimeDep, require_viewer
from pmolens.api.models import Problem
from pmolens.reports.pdf import PdfUnavailable, build_pdf
from pmolens.reports.steering import build_report

router = APIRouter(tags=["reports"], dependencies=[Depends(require_viewer)])

#: one PDF at a time per server: a Chromium is heavy, and a second request waits for the first
#: (reports.pdf also holds one Chromium per process for the CLI and the scheduler)
_PDF_SLOT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _pdf_slot() -> asyncio.Semaphore:
    """The semaphore of the running event loop (tests start several loops in one process)."""
    loop = asyncio.get_running_loop()
    return _PDF_SLOT.setdefault(loop, asyncio.Semaphore(1))


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


@router.get(
    "/reports/steering.pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The steering report, A4."},
        503: {"model": Problem, "description": "No Chromium here, or it could not print."},
    },
)
async def steering_pdf(
    runtime: RuntimeDep,
    lang: Annotated[Literal["en", "nl"], Query()] = "en",
    organisation: Annotated[str | None, Query()] = None,
    as_of: Annotated[AsOfMoment | None, Query(description=AS_OF_DESCRIPTION)] = None,
) -> Response:
    """The steering report printed by headless Chromium (A4 landscape, docs/report.md)."""
    async with _pdf_slot():
        try:
            printed = await asyncio.to_thread(
                build_pdf,
                runtime.warehouse,
                runtime.settings,
                lang=lang,
                organisation=organisation,
                as_of=as_of,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except PdfUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
    name = f"steering-{lang}.pdf"
    return Response(
        printed.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
