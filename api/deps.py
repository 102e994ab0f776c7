"""Typed dependencies shared by the routes: runtime, auth roles, output format, strict queries,
bounded paging and days, the body guard and the 422 handler.

The dependencies are ``async def`` on purpose: they never block, and FastAPI runs a plain ``def``
dependency in the thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import threading
import typing
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import polars as pl
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import AfterValidator, BaseModel, BeforeValidator, WithJsonSchema
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pmolens.api.runtime import Runtime
from pmolens.warehouse.config import TokenConfig
from pmolens.warehouse.store import Warehouse


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# ------------------------------------------------------------------------------------ auth

bearer = HTTPBearer(auto_error=False)
ROLES = {"viewer": 1, "operator": 2}


def token_of(runtime: Runtime, offered: str) -> TokenConfig | None:
    """The configured token this secret is (the highest role when several match), or None."""
    best = None
    for token in runtime.settings.server.tokens:
        expected = os.environ.get(token.env, "")
        matches = bool(expected) and secrets.compare_digest(offered.encode(), expected.encode())
        if matches and (best is None or ROLES[token.role] > ROLES[best.role]):
            best = token
    return best


def role_of(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The caller's role for these credentials, or None (anonymous or an unknown token)."""
    if runtime.settings.server.auth == "none":
        return "operator"
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    token = token_of(runtime, credentials.credentials)
    return token.role if token else None


def _require(minimum: str) -> Any:
    async def check(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        role = role_of(runtime, credentials)
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


def _query_params(dependant: Dependant) -> dict[str, bool]:
    """Query parameter name -> whether it takes a list (may be repeated)."""
    names = {}
    for param in dependant.query_params:
        annotation = param.field_info.annotation
        kinds = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
        listed = any(typing.get_origin(k) in (list, set, tuple) for k in (annotation, *kinds))
        names[param.alias or param.name] = listed
    for sub in dependant.dependencies:
        names |= _query_params(sub)
    return names


async def strict_query(request: Request) -> None:
    """Unknown query parameters are a 422, not silently ignored (a typo must not widen a filter);
    so is a single-valued parameter given twice (which value would count?)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _query_params(dependant)
    sent = request.query_params
    problems = [
        {
            "loc": ["query", short(name)],
            "msg": f"unknown query parameter; allowed: {sorted(allowed)}",
            "type": "unknown_parameter",
        }
        for name in sorted(set(sent) - set(allowed))
    ] + [
        {
            "loc": ["query", name],
            "msg": "given more than once; takes one value",
            "type": "repeated_parameter",
        }
        for name in sorted(set(sent) & set(allowed))
        if not allowed[name] and len(sent.getlist(name)) > 1
    ]
    if problems:
        raise HTTPException(422, problems)


# ------------------------------------------------------------------ bounded query values

MAX_OFFSET = 2**31 - 1
"""Largest ``offset`` (and the bound of every other open-ended integer in a query or path)."""

Limit = Annotated[int, Query(ge=1, le=10_000, description="Rows per page, 1 to 10,000.")]
Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip, 0 to {MAX_OFFSET:,}.")
]

FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)
"""The days a query may name: wide enough for any tracker history and forecast, narrow enough
that date arithmetic on them (end of day, weeks ahead) never overflows."""

_DAY_RANGE = f"between {FIRST_DAY} and {LAST_DAY}"
# The bound in the OpenAPI too: a year pattern, so clients (and schemathesis) know it.
_DAY_PATTERN = r"^(19[7-9][0-9]|2[01][0-9][0-9])-"


def _iso_text(value: object) -> object:
    """Only ISO text is a day or time here (pydantic would read ``0`` as 1970-01-01)."""
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 day (YYYY-MM-DD) or time")
    return value


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be a day {_DAY_RANGE}, got {value}")
    return value


def _moment_in_range(value: datetime) -> datetime:
    _day_in_range(value.date())
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Day = Annotated[
    date,
    BeforeValidator(_iso_text),
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": _DAY_PATTERN}),
]
"""A day in a query, bounded to FIRST_DAY..LAST_DAY (422 with that range otherwise)."""

Moment = Annotated[
    datetime,
    BeforeValidator(_iso_text),
    AfterValidator(_moment_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _DAY_PATTERN}),
]
"""A time in a query, bounded like ``Day``; a time without offset is UTC (the warehouse's)."""

AS_OF_DESCRIPTION = (
    "Answer as of this moment: the analyses see the warehouse as it was known then (items "
    "created later left out; statuses, flags and sprints rebuilt from the history up to it). "
    "A day (YYYY-MM-DD) means the end of that day, 23:59:59 UTC, as the report's --as-of; a "
    "time without offset is UTC. Omitted, or the kept results' own moment: the results kept "
    f"after the last sync. Between {FIRST_DAY} and {LAST_DAY}."
)


def _as_of_text(value: object) -> object:
    """A bare day is the end of that day (UTC); anything else is read as a time."""
    value = _iso_text(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(_day_in_range(date.fromisoformat(value)), time(23, 59, 59), UTC)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(_day_in_range(value), time(23, 59, 59), UTC)
    return value


AsOfMoment = Annotated[
    datetime,
    BeforeValidator(_as_of_text),
    AfterValidator(_moment_in_range),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": _DAY_PATTERN},
                {"type": "string", "format": "date-time", "pattern": _DAY_PATTERN},
            ]
        }
    ),
]
"""A day or a time in a query, bounded like ``Day``: a day is its end (23:59:59 UTC)."""


class Results:
    """The analyses a request reads, as of its ``as_of`` (None: as kept after the last sync)."""

    def __init__(self, runtime: Runtime, as_of: datetime | None) -> None:
        self.runtime = runtime
        self.as_of = as_of

    def get(self, name: str) -> pl.DataFrame:
        return self.runtime.results.get(name, as_of=self.as_of)

    @property
    def key(self) -> Hashable:
        """Part of a cache key: what distinguishes these results within one generation."""
        return self.as_of


async def results_as_of(
    runtime: RuntimeDep,
    as_of: Annotated[AsOfMoment | None, Query(description=AS_OF_DESCRIPTION)] = None,
) -> Results:
    return Results(runtime, as_of)


ResultsDep = Annotated[Results, Depends(results_as_of)]
"""The analyses as of the request's optional ``as_of`` query parameter."""

# --------------------------------------------------------------- what a 422 may echo back

ECHO_LIMIT = 80
"""A 422 repeats at most this many characters of what the client sent."""


def short(value: object, limit: int = ECHO_LIMIT) -> Any:
    """``value`` as a 422 may echo it: as it is when short, else its first ``limit`` characters
    (containers as their JSON text)."""
    if value is None or isinstance(value, bool | int | float | str):
        text = str(value)
    else:
        text = json.dumps(jsonable_encoder(value), default=str)
    return value if len(text) <= limit else text[:limit] + "…"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, but ``input`` and ``loc`` never echo more than a short prefix."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        error = dict(error)
        if "input" in error:
            error["input"] = short(error["input"])
        error["loc"] = [part if isinstance(part, int) else short(part) for part in error["loc"]]
        error.pop("url", None)
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


# ------------------------------------------------------------------------- body guard

MAX_BODY = 1024 * 1024
"""Largest request body (bytes); larger is a 413 before it is read."""


class BodyGuard:
    """ASGI middleware: a request with a body is authenticated and size-checked before anything
    reads it. Without a valid token (when auth is on) it is a 401, above ``max_body`` a 413; a
    body without a Content-Length is counted while it is read and cut off at the limit."""

    def __init__(
        self,
        app: ASGIApp,
        roles: list[tuple[APIRoute, str | None]],
        max_body: int = MAX_BODY,
    ) -> None:
        self.app = app
        self.roles = roles
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if (length is None or length.strip() == "0") and not chunked:
            await self.app(scope, receive, send)
            return
        minimum = next(
            (r for route, r in self.roles if route.matches(scope)[0] == Match.FULL), None
        )
        if minimum is not None:
            scheme, token = get_authorization_scheme_param(headers.get("authorization"))
            offered = HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
            role = role_of(scope["app"].state.runtime, offered if token else None)
            if role is None:
                await _refuse(
                    send, 401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}
                )
                return
            if ROLES[role] < ROLES[minimum]:
                await _refuse(send, 403, f"needs the {minimum} role")
                return
        if length is not None:
            if not length.strip().isdigit():
                await _refuse(send, 400, "invalid Content-Length")
                return
            if int(length) > self.max_body:
                await _refuse(send, 413, f"request body larger than {self.max_body} bytes")
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"request body larger than {self.max_body} bytes")
            return message

        await self.app(scope, counted, send)


async def _refuse(
    send: Send, code: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    response = JSONResponse({"detail": detail}, status_code=code, headers=headers)
    body = response.body
    await send({"type": "http.response.start", "status": code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": body})


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
            neutralise_formulas(flat).write_csv(),
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


_FORMULA_START = r"^[=+\-@\t\r]"


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """String cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, tab or CR) get a leading ``'``, as OWASP advises for CSV export. Numbers stay numbers;
    Parquet is typed and stays raw."""
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, t in frame.schema.items()
        if t == pl.String
    )


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


# --------------------------------------------------------------------- OpenAPI answers

TABLE_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found = {dependant.call} if dependant.call else set()
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def route_roles(routes: list[BaseRoute]) -> list[tuple[APIRoute, str | None]]:
    """Each API route with the role it needs (None: public)."""
    roles: list[tuple[APIRoute, str | None]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            calls = _calls(route.dependant)
            role = "operator" if require_operator in calls else None
            roles.append((route, role or ("viewer" if require_viewer in calls else None)))
    return roles


def document_responses(app: FastAPI, routes: list[BaseRoute]) -> None:
    """The OpenAPI lists every answer a route can give: 401 (token routes), 403 (operator
    routes), 404 (routes with a path parameter), 413 (bodies), 422 (every route: unknown query
    parameters are refused; a semantic refusal is one sentence), the CSV / Parquet media types of
    table routes, and a token that is optional on public routes."""
    from pmolens.api.models import Problem, ValidationProblem

    generate = app.openapi

    def problem(model: type[BaseModel], description: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"description": description, "content": {"application/json": {"schema": ref}}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, ValidationProblem):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        for route, role in route_roles(routes):
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                answers = operation.setdefault("responses", {})
                if role is not None:
                    answers.setdefault("401", problem(Problem, "Missing or invalid bearer token."))
                elif "security" in operation:
                    operation["security"].append({})  # a token is optional here
                if role == "operator":
                    answers.setdefault("403", problem(Problem, "Needs the operator role."))
                if route.dependant.path_params:
                    answers.setdefault("404", problem(Problem, "No such resource."))
                if route.body_field is not None:
                    answers.setdefault("400", problem(Problem, "The body is not JSON text."))
                    answers.setdefault("413", problem(Problem, f"Body above {MAX_BODY} bytes."))
                answers["422"] = problem(ValidationProblem, "Invalid request.")
                if output_format in _calls(route.dependant):
                    main = answers.setdefault(str(route.status_code or 200), {})
                    main.setdefault("content", {}).update(TABLE_CONTENT)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook


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


_caches: weakref.WeakKeyDictionary[Warehouse, dict[str, GenerationCache]] = (
    weakref.WeakKeyDictionary()
)
_caches_lock = threading.Lock()


def generation_cache(runtime: Runtime, name: str = "api", size: int = 64) -> GenerationCache:
    """The cache ``name`` of this runtime's warehouse (one per warehouse and name: the routes
    share "api", the web app keeps its own, larger one), created with ``size`` entries."""
    with _caches_lock:
        named = _caches.setdefault(runtime.warehouse, {})
        cache = named.get(name)
        if cache is None:
            cache = named[name] = GenerationCache(size)
        return cache


def json_response(model: type[BaseModel], body: Any) -> Response:
    """Validate ``body`` against the route's response model and encode it once, as FastAPI
    would, so the encoded bytes can be cached and sent as they are."""
    return Response(model.model_validate(body).model_dump_json(), media_type="application/json")
