"""Typed dependencies shared by the routes: runtime, auth roles, output format, strict queries."""

from __future__ import annotations

import io
import os
import secrets
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import polars as pl
from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from api.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
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
    def check(
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


def strict_query(request: Request) -> None:
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


def output_format(
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


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()
