"""Trigger syncs (operator) and read their history (viewer)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from pmolens.api.deps import (
    MAX_OFFSET,
    FormatDep,
    Moment,
    RuntimeDep,
    records,
    require_operator,
    require_viewer,
    short,
    table,
)
from pmolens.api.models import SyncRequest, SyncRun, SyncStarted
from pmolens.pipeline.manager import AlreadySyncing
from pmolens.warehouse.config import ConfigError

router = APIRouter(tags=["sync"])

_RUNS = "SELECT * EXCLUDE (cursor_before, cursor_after) FROM sync_runs"


@router.post(
    "/sync",
    response_model=SyncStarted,
    status_code=202,
    dependencies=[Depends(require_operator)],
    responses={409: {"description": "That source is already syncing."}},
)
async def start_sync(runtime: RuntimeDep, request: SyncRequest | None = None) -> SyncStarted:
    request = request or SyncRequest()
    try:
        run_ids = runtime.syncs.start(
            request.sources, full=request.full, allow_mass_delete=request.allow_mass_delete
        )
    except AlreadySyncing as exc:
        raise HTTPException(409, short(str(exc), 200)) from None
    except ConfigError as exc:
        raise HTTPException(422, short(str(exc), 200)) from None
    frame = runtime.warehouse.query(
        f"{_RUNS} WHERE list_contains($ids, run_id) ORDER BY run_id", {"ids": run_ids}
    )
    return SyncStarted(runs=[SyncRun(**row) for row in records(frame)])


@router.get("/sync-runs", response_model=list[SyncRun], dependencies=[Depends(require_viewer)])
def sync_runs(
    runtime: RuntimeDep,
    fmt: FormatDep,
    source: Annotated[str | None, Query()] = None,
    outcome: Annotated[
        Literal["running", "success", "partial", "failed", "abandoned"] | None, Query()
    ] = None,
    since: Annotated[
        Moment | None, Query(description="Runs started at or after this time.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    frame = runtime.warehouse.query(
        f"""
        {_RUNS}
        WHERE ($source IS NULL OR source = $source)
          AND ($outcome IS NULL OR outcome = $outcome)
          AND ($since IS NULL OR started >= $since)
        ORDER BY run_id DESC LIMIT $limit
        """,
        {"source": source, "outcome": outcome, "since": since, "limit": limit},
    )
    return table(frame, fmt, "sync-runs") or records(frame)


@router.get("/sync-runs/{run_id}", response_model=SyncRun, dependencies=[Depends(require_viewer)])
def sync_run(runtime: RuntimeDep, run_id: Annotated[int, Path(ge=1, le=MAX_OFFSET)]) -> SyncRun:
    frame = runtime.warehouse.query(f"{_RUNS} WHERE run_id = ?", [run_id])
    if not frame.height:
        raise HTTPException(404, f"no sync run {run_id}")
    return SyncRun(**frame.row(0, named=True))
