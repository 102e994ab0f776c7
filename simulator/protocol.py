"""What a simulated tenant and the simulator's HTTP side share: a request (``Call``), an answer
(``Reply``, with pre-encoded ``RawJson`` or non-JSON ``RawBody``), and ``HttpError`` for refusals.
Framework-free, so tenant handlers are plain functions and the server imports the tenants, not
the other way round."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One request as a handler sees it (framework-free, so handlers are plain functions)."""

    method: str
    path: str  # after the tenant prefix
    params: dict[str, str]
    body: Any
    base: str  # http://host:port
    tenant_base: str  # http://host:port/<tenant>
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: Any  # JSON-able, or RawJson (already encoded)
    headers: dict[str, str] = field(default_factory=dict)


class RawJson:
    """A body already encoded as JSON (a tenant's render cache): sent as it is."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def json(self) -> Any:
        return json.loads(self.data)


class RawBody:
    """A body that is not JSON (an HTML maintenance page), sent as it is with its content type."""

    __slots__ = ("content_type", "data")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data = data
        self.content_type = content_type


class HttpError(Exception):
    """Raised by handlers: becomes a response with this status and JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
