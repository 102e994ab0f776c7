"""Liveness, warehouse reachability, the last sync per source and the last delivery per scheduled
report (no auth: for probes).

Anyone may ask, so an anonymous answer carries outcomes and timestamps but never a run's error
text (it names endpoints, projects and what a tracker or mail relay said). A caller with a viewer
token gets the error text too, redacted once more on the way out. A failed last delivery of a
configured report makes the status degraded, as a failed sync does: someone is waiting for that
steering pack. ``instance`` is the running server's random id:
``pmolens sync`` trusts a claim file only when the server at its URL answers with the id the
claim names (api/handoff.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials

from pmolens.api.deps import ROLES, RuntimeDep, bearer, role_of
from pmolens.api.models import Health, ReportHealth, SourceHealth
from pmolens.warehouse.secrets import redact

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Health:
    role = role_of(runtime, credentials)  # optional: a missing or wrong token is anonymous
    show_errors = role is not None and ROLES[role] >= ROLES["viewer"]
    try:
        last = runtime.warehouse.query(
            """
            SELECT s.source, r.outcome, r.finished, r.error FROM sources s
            LEFT JOIN (SELECT * FROM sync_runs QUALIFY row_number() OVER
                (PARTITION BY source ORDER BY run_id DESC) = 1) r USING (source)
            ORDER BY s.source
            """
        )
        deliveries = runtime.warehouse.last_deliveries([r.name for r in runtime.settings.reports])
        generation = runtime.warehouse.generation()
        reachable = True
    except Exception:  # the probe reports, it does not raise
        return Health(
            status="degraded",
            warehouse=False,
            schema_version=0,
            generation=0,
            syncing=[],
            sources=[],
            instance=runtime.instance,
        )
    sources = [
        SourceHealth(
            source=s,
            last_outcome=o,
            last_finished=f,
            last_error=redact(e) if e is not None and show_errors else None,
        )
        for s, o, f, e in last.iter_rows()
    ]
    reports = [
        ReportHealth(
            report=row["report"],
            last_outcome=row["outcome"],
            last_finished=row["finished"],
            as_of=row["as_of"],
            last_error=redact(row["error"]) if row["error"] is not None and show_errors else None,
        )
        for row in deliveries.iter_rows(named=True)
    ]
    failing = any(s.last_outcome == "failed" for s in sources) or any(
        r.last_outcome == "failed" for r in reports
    )
    stale = runtime.syncs.refresh_error
    return Health(
        status="degraded" if failing or stale else "ok",
        warehouse=reachable,
        schema_version=runtime.warehouse.schema_version,
        generation=generation,
        syncing=sorted(runtime.syncs.running),
        sources=sources,
        instance=runtime.instance,
        results_stale=stale is not None,
        results_error=redact(stale) if stale is not None and show_errors else None,
        reports=reports,
    )
