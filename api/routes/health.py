"""Liveness, warehouse reachability and the last sync per source (no auth: for probes)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.models import Health, SourceHealth

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(runtime: RuntimeDep) -> Health:
    try:
        last = runtime.warehouse.query(
            """
            SELECT s.source, r.outcome, r.finished, r.error FROM sources s
            LEFT JOIN (SELECT * FROM sync_runs QUALIFY row_number() OVER
                (PARTITION BY source ORDER BY run_id DESC) = 1) r USING (source)
            ORDER BY s.source
            """
        )
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
        )
    sources = [
        SourceHealth(source=s, last_outcome=o, last_finished=f, last_error=e)
        for s, o, f, e in last.iter_rows()
    ]
    failing = any(s.last_outcome == "failed" for s in sources)
    return Health(
        status="degraded" if failing else "ok",
        warehouse=reachable,
        schema_version=runtime.warehouse.schema_version,
        generation=generation,
        syncing=sorted(runtime.syncs.running),
        sources=sources,
    )
