"""Typed dependencies shared by the routes: runtime, auth roles, output format, strict queries.

The dependencies are ``async def`` on purpose: they never block, and FastAPI runs a plain ``def``
dependency in the thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import polars as pl
from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.runtime import Runtime
from warehouse.store import Warehouse


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# ------------------------------------------------------------------------------------ auth

_bearer = HTTPBearer(auto_error=False)
ROLES = {"viewer": 1, "operator": 2}


def _role_of(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    server = runtime.settings.server
    if server.auth == "none":
        return "operator"
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    offered = credentials.credentials.encode()
    role = None
    for token in server.tokens:
        expected = os.environ.get(token.env, "")
        matches = bool(expected) and secrets.compare_digest(offered, expected.encode())
        if matches and (role is None or ROLES[token.role] > ROLES[role]):
            role = token.role
    return role


def _require(minimum: str) -> Any:
    async def check(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        role = _role_of(runtime, credentials)
        if role is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if ROLES[role] < ROLES[minimum]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs the {minimum} role")
        return role

    return check


require_viewer = _require("viewer")
require_operator = _require("operator")

# ------------------------------------------------------------------------- strict queries


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias or p.name for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def strict_query(request: Request) -> None:
    """Unknown query parameters are a 422, not silently ignored (a typo must not widen a filter)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["query", name],
                    "msg": f"unknown query parameter; allowed: {sorted(allowed)}",
                    "type": "unknown_parameter",
                }
                for name in unknown
            ],
        )


# ----------------------------------------------------------------------- table responses


class Format(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"


_MEDIA = {"text/csv": Format.csv, "application/vnd.apache.parquet": Format.parquet}


async def output_format(
    request: Request,
    format: Annotated[
        Format | None, Query(description="json (default), csv or parquet; or send an Accept header")
    ] = None,
) -> Format:
    if format is not None:
        return format
    accept = request.headers.get("accept", "")
    for media, fmt in _MEDIA.items():
        if media in accept:
            return fmt
    return Format.json


FormatDep = Annotated[Format, Depends(output_format)]


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    total: int
    limit: int
    offset: int
    items: list[T]


def table(frame: pl.DataFrame, fmt: Format, name: str) -> Response | None:
    """CSV / Parquet export of a table result; None means: answer JSON."""
    if fmt == Format.csv:
        flat = frame.with_columns(
            [pl.col(c).list.join("; ") for c, t in frame.schema.items() if isinstance(t, pl.List)]
        )
        return Response(
            flat.write_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == Format.parquet:
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        return Response(
            buffer.getvalue(),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    return None


def where_equal(frame: pl.DataFrame, **filters: Any) -> pl.DataFrame:
    """Rows whose column equals each given filter value; a filter of None is not applied."""
    for column, value in filters.items():
        if value is not None:
            frame = frame.filter(pl.col(column) == value)
    return frame


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def paged(
    frame: pl.DataFrame, fmt: Format, name: str, limit: int, offset: int
) -> Response | dict[str, Any]:
    """A ``Page`` of the frame as JSON; CSV / Parquet exports take every row."""
    exported = table(frame, fmt, name)
    if exported is not None:
        return exported
    page = frame.slice(offset, limit)
    return {"total": frame.height, "limit": limit, "offset": offset, "items": records(page)}


# ------------------------------------------------------------------- per-generation cache


class GenerationCache:
    """Values derived from one warehouse generation (filtered frames, encoded responses).

    Why: a hot route must not query DuckDB, convert frames or run pydantic per request; what it
    answers only changes when a sync commits. Bounded LRU, emptied when the generation moves.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._generation = -1
        self._values: OrderedDict[Hashable, Any] = OrderedDict()

    def peek(self, generation: int, key: Hashable) -> Any | None:
        """The cached value or None, without building it."""
        with self._lock:
            if generation != self._generation:
                return None
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    async def aget(self, generation: int, key: Hashable, build: Callable[[], Any]) -> Any:
        """``get`` for async routes: a value not cached yet is built in the thread pool, so a
        first request after a sync does not stall the event loop."""
        value = self.peek(generation, key)
        if value is None:
            value = await run_in_threadpool(self.get, generation, key, build)
        return value

    def get(self, generation: int, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if generation != self._generation:
                self._values.clear()
                self._generation = generation
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = build()  # outside the lock: two first requests may both build, both correct
        with self._lock:
            if generation == self._generation:
                self._values[key] = value
                while len(self._values) > self._size:
                    self._values.popitem(last=False)
        return value


_caches: weakref.WeakKeyDictionary[Warehouse, GenerationCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def generation_cache(runtime: Runtime) -> GenerationCache:
    """The cache of this runtime's warehouse (one per warehouse, shared by the routes)."""
    with _caches_lock:
        cache = _caches.get(runtime.warehouse)
        if cache is None:
            cache = _caches[runtime.warehouse] = GenerationCache()
        return cache


def json_response(model: type[BaseModel], body: Any) -> Response:
    """Validate ``body`` against the route's response model and encode it once, as FastAPI
    would, so the encoded bytes can be cached and sent as they are."""
    return Response(model.model_validate(body).model_dump_json(), media_type="application/json")
