"""The FastAPI app: routers from api/routes, one Runtime, scheduler and single-writer claim.

Adding a resource = one module in api/routes with a ``router``, listed in ROUTERS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline

from pmolens.api import web
from pmolens.api.deps import (
    BodyGuard,
    document_responses,
    route_roles,
    strict_query,
    validation_error,
)
from pmolens.api.handoff import release_claim, write_claim
from pmolens.api.routes import (
    alignment,
    backlog,
    board,
    decisions,
    dependencies,
    flow,
    forecast,
    health,
    kpis,
    portfolio,
    reports,
    sources,
    sync,
    work_items,
)
from pmolens.api.runtime import Runtime, make_runtime
from pmolens.pipeline.leader import Leadership
from pmolens.pipeline.schedule import SyncScheduler, validate_schedules
from pmolens.reports.delivery import schedule_reports
from pmolens.warehouse.config import Settings

log = logging.getLogger("pmolens.serve")

ROUTERS = [
    health,
    sources,
    sync,
    work_items,
    decisions,
    portfolio,
    dependencies,
    alignment,
    backlog,
    flow,
    forecast,
    kpis,
    board,
    reports,
]


def create_app(
    runtime: Runtime, *, scheduler: bool = False, claim_url: str | None = None
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        runtime.start()  # runs left `running` by a dead process are marked abandoned
        if claim_url:
            write_claim(runtime.settings, claim_url, runtime.instance)
        cron = None
        if scheduler:
            cron = SyncScheduler(runtime.settings, runtime.syncs)
            schedule_reports(cron, runtime.warehouse, runtime.settings)  # [[reports]] delivery
            lake = runtime.warehouse.lake
            if lake is None:
                task = asyncio.create_task(cron.run_forever())
            else:  # several servers share the lake: the one elected leader runs the cron
                task = asyncio.create_task(Leadership(lake, cron.run_forever).run_forever())
        try:
            yield
        finally:
            if task:
                task.cancel()
            await runtime.syncs.wait()
            if cron:
                await cron.wait_jobs()  # a delivery under way is finished and recorded
            if claim_url:
                release_claim(runtime.settings, runtime.instance)

    # /docs and /redoc load Swagger UI and ReDoc from this server (fastapi-offline ships them),
    # not from a CDN: many government and partner networks have no internet
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="pmolens",
        version="0.1.0",
        summary="Cross-team and cross-organisation steering analytics over Jira and Azure DevOps.",
        dependencies=[Depends(strict_query)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    for module in ROUTERS:
        app.include_router(module.router)
    routes = [route for module in ROUTERS for route in module.router.routes]
    app.add_middleware(BodyGuard, roles=route_roles(routes))  # token, size: before the body
    app.add_exception_handler(RequestValidationError, validation_error)  # 422 echoes little
    document_responses(app, routes)
    web.install(app)  # the steering web app at / (pages are not part of the OpenAPI)
    return app


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    scheduler: bool = True,
) -> None:
    """Run API + scheduler; this process becomes the warehouse's only writer. On the lake it is
    one of many: no claim file, and the scheduler runs only while this process is its elected
    leader (``scheduler=False``: a replica that only serves)."""
    import uvicorn

    host = host or settings.server.host
    port = port or settings.server.port
    if settings.server.auth == "none":
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"auth = 'none' is only allowed on loopback, not {host}")
        log.warning("auth is OFF (auth = 'none'): anyone on this machine can read and sync")
    validate_schedules(settings)
    runtime = make_runtime(settings)
    url = f"http://{host}:{port}"
    lake = settings.warehouse.kind == "ducklake"
    app = create_app(runtime, scheduler=scheduler, claim_url=None if lake else url)
    config = uvicorn.Config(app, host=host, port=port, log_level="info")
    # listen before the app starts (and writes its claim): a CLI that finds the claim can always
    # connect, and its /health question waits in the backlog instead of meeting a closed port
    sock = config.bind_socket()
    sock.listen(128)
    uvicorn.Server(config).run(sockets=[sock])
