"""Work items across every source, filtered and paginated.

Served from an in-memory frame of the live items, read once per warehouse generation; filters are
applied in polars and each filtered frame is kept (small LRU); each row is encoded once per
generation. A page costs a slice and a join of encoded rows, not a DuckDB query nor pydantic.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query, Response

from pmolens.api.deps import (
    FormatDep,
    Limit,
    Moment,
    Offset,
    Page,
    RuntimeDep,
    generation_cache,
    records,
    require_viewer,
    table,
    where_equal,
)
from pmolens.api.models import WorkItem

router = APIRouter(tags=["work items"], dependencies=[Depends(require_viewer)])

Level = Literal["initiative", "epic", "feature", "story", "task", "bug", "impediment"]
Category = Literal["todo", "in_progress", "done"]
_COLUMNS = ", ".join(f'"{name}"' for name in WorkItem.model_fields)


@router.get("/work-items", response_model=Page[WorkItem])
async def work_items(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query()] = None,
    source: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    level: Annotated[Level | None, Query()] = None,
    status_category: Annotated[Category | None, Query()] = None,
    updated_since: Annotated[Moment | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    generation = runtime.warehouse.generation()
    cache = generation_cache(runtime)
    if updated_since is not None and updated_since.tzinfo is None:
        updated_since = updated_since.replace(tzinfo=UTC)  # the warehouse is UTC
    equal = {
        "organisation": organisation,
        "source": source,
        "team": team,
        "level": level,
        "status_category": status_category,
    }

    def everything() -> pl.DataFrame:
        return runtime.warehouse.query(
            f"SELECT {_COLUMNS} FROM work_items WHERE NOT is_deleted ORDER BY item_id"
        )

    def filtered() -> pl.DataFrame:
        frame: pl.DataFrame = cache.get(generation, ("work_items",), everything)
        frame = where_equal(frame, **equal)
        if updated_since is not None:
            frame = frame.filter(pl.col("updated") >= updated_since)
        return frame

    key = ("work_items", *equal.values(), updated_since)
    frame: pl.DataFrame = await cache.aget(generation, key, filtered)
    if fmt.value != "json":  # exports take the whole filtered table
        return table(frame, fmt, "work-items")
    page = frame.slice(offset, limit)
    encoded: dict[str, bytes] = cache.get(generation, ("work_item_rows",), dict)
    ids = page.get_column("item_id").to_list()
    fresh = [k for k, item in enumerate(ids) if item not in encoded]
    if fresh:  # each row is validated and encoded once per generation, then reused
        for k, row in zip(fresh, records(page[fresh]), strict=True):
            encoded[ids[k]] = WorkItem.model_validate(row).model_dump_json().encode()
    items = b",".join(encoded[item] for item in ids)
    head = f'{{"total":{frame.height},"limit":{limit},"offset":{offset},"items":['
    return Response(head.encode() + items + b"]}", media_type="application/json")
