"""Work items across every source, filtered and paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import FormatDep, Page, RuntimeDep, records, require_viewer, table
from api.models import WorkItem

router = APIRouter(tags=["work items"], dependencies=[Depends(require_viewer)])

Level = Literal["initiative", "epic", "feature", "story", "task", "bug", "impediment"]
Category = Literal["todo", "in_progress", "done"]
_COLUMNS = ", ".join(f'"{name}"' for name in WorkItem.model_fields)


@router.get("/work-items", response_model=Page[WorkItem])
def work_items(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query()] = None,
    source: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    level: Annotated[Level | None, Query()] = None,
    status_category: Annotated[Category | None, Query()] = None,
    updated_since: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
):  # type: ignore[no-untyped-def]
    params = {
        "organisation": organisation,
        "source": source,
        "team": team,
        "level": level,
        "category": status_category,
        "since": updated_since,
    }
    where = """
        NOT is_deleted
        AND ($organisation IS NULL OR organisation = $organisation)
        AND ($source IS NULL OR source = $source)
        AND ($team IS NULL OR team = $team)
        AND ($level IS NULL OR level = $level)
        AND ($category IS NULL OR status_category = $category)
        AND ($since IS NULL OR updated >= $since)
    """
    if fmt.value != "json":  # exports take the whole filtered table
        frame = runtime.warehouse.query(
            f"SELECT {_COLUMNS} FROM work_items WHERE {where} ORDER BY item_id", params
        )
        return table(frame, fmt, "work-items")
    total = runtime.warehouse.query(f"SELECT count(*) AS n FROM work_items WHERE {where}", params)
    frame = runtime.warehouse.query(
        f"SELECT {_COLUMNS} FROM work_items WHERE {where} ORDER BY item_id "
        "LIMIT $limit OFFSET $offset",
        {**params, "limit": limit, "offset": offset},
    )
    return {"total": total["n"][0], "limit": limit, "offset": offset, "items": records(frame)}
