"""Sources, organisations and teams: who is in the chain and what each brought in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pmolens.api.deps import FormatDep, RuntimeDep, records, require_viewer, table
from pmolens.api.models import Organisation, Source, Team

router = APIRouter(tags=["chain"], dependencies=[Depends(require_viewer)])


@router.get("/sources", response_model=list[Source])
def sources(runtime: RuntimeDep, fmt: FormatDep):
    frame = runtime.warehouse.query(
        """
        SELECT s.source, s.kind, s.organisation, s.base_url,
               count(w.item_id) FILTER (WHERE NOT w.is_deleted) AS items, c.cursor
        FROM sources s LEFT JOIN work_items w USING (source) LEFT JOIN cursors c USING (source)
        GROUP BY ALL ORDER BY s.source
        """
    )
    schedules = {s.name: s.schedule for s in runtime.settings.sources}
    frame = frame.with_columns(
        frame["source"].replace_strict(schedules, default=None).alias("schedule")
    )
    return table(frame, fmt, "sources") or records(frame)


@router.get("/organisations", response_model=list[Organisation])
def organisations(runtime: RuntimeDep, fmt: FormatDep):
    frame = runtime.warehouse.query(
        """
        SELECT o.organisation, o.description,
               (SELECT count(*) FROM sources s WHERE s.organisation = o.organisation) AS sources,
               (SELECT count(*) FROM teams t WHERE t.organisation = o.organisation) AS teams,
               (SELECT count(*) FROM work_items w
                WHERE w.organisation = o.organisation AND NOT w.is_deleted) AS items
        FROM organisations o ORDER BY o.organisation
        """
    )
    return table(frame, fmt, "organisations") or records(frame)


@router.get("/teams", response_model=list[Team])
def teams(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query(description="Only this organisation.")] = None,
):
    frame = runtime.warehouse.query(
        """
        SELECT t.team, t.organisation, t.source,
               count(w.item_id) AS items,
               count(w.item_id) FILTER (WHERE w.status_category <> 'done') AS open_items
        FROM teams t LEFT JOIN work_items w ON w.team = t.team AND NOT w.is_deleted
        WHERE $organisation IS NULL OR t.organisation = $organisation
        GROUP BY ALL ORDER BY t.organisation, t.team
        """,
        {"organisation": organisation},
    )
    return table(frame, fmt, "teams") or records(frame)
