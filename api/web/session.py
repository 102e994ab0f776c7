"""Sign-in for people: a token typed once becomes a signed session cookie.

The cookie holds the role, the viewer's name, an expiry and a random session id — never the
token — signed with HMAC-SHA256 (key from ``server.session_secret_env``, else random per
process). It is HttpOnly, SameSite=Strict, and Secure when the request came over https. Forms
that change something (sign-out, saved views) carry a CSRF token derived from the session id,
checked on POST; the sign-in form uses a short-lived pre-session cookie the same way. A bearer
token in an Authorization header still works for every page (scripts, the API).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request, Response
from fastapi.security.utils import get_authorization_scheme_param

from pmolens.api.deps import ROLES, token_of
from pmolens.api.runtime import Runtime

COOKIE = "pmolens_session"
PRE_COOKIE = "pmolens_signin"
SESSION_SECONDS = 12 * 3600  # a working day; sign in again the next morning
MAX_FORM = 16 * 1024  # a sign-in or bookmark form is small


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a role and a name (saved views are kept per name)."""

    role: str
    name: str
    session: str = ""  # the session id ("" for bearer calls and auth = 'none')

    def may(self, minimum: str) -> bool:
        return ROLES[self.role] >= ROLES[minimum]


_process_key = secrets.token_bytes(32)


def _key(runtime: Runtime) -> bytes:
    env = runtime.settings.server.session_secret_env
    value = os.environ.get(env, "") if env else ""
    return value.encode() if value else _process_key


def _sign(runtime: Runtime, payload: bytes) -> str:
    mac = hmac.new(_key(runtime), payload, hashlib.sha256).digest()
    return _b64(payload) + "." + _b64(mac)


def _unsign(runtime: Runtime, value: str) -> bytes | None:
    body, _, mac = value.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except (ValueError, TypeError):
        return None
    expected = hmac.new(_key(runtime), payload, hashlib.sha256).digest()
    return payload if hmac.compare_digest(given, expected) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def viewer_of(request: Request) -> Viewer | None:
    """The signed-in viewer (cookie or bearer header), or None."""
    runtime: Runtime = request.app.state.runtime
    if runtime.settings.server.auth == "none":
        return Viewer("operator", "local")
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if token and scheme.lower() == "bearer":
        found = token_of(runtime, token)
        return Viewer(found.role, found.viewer) if found else None
    raw = request.cookies.get(COOKIE)
    payload = _unsign(runtime, raw) if raw else None
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        if float(data["exp"]) < time.time() or data["role"] not in ROLES:
            return None
        return Viewer(str(data["role"]), str(data["name"]), str(data["sid"]))
    except (ValueError, KeyError, TypeError):
        return None


def sign_in(request: Request, response: Response, offered: str) -> Viewer | None:
    """Check a typed token; on success set the session cookie and return the viewer."""
    runtime: Runtime = request.app.state.runtime
    found = token_of(runtime, offered.strip()) if offered.strip() else None
    if found is None:
        return None
    viewer = Viewer(found.role, found.viewer, secrets.token_urlsafe(18))
    payload = json.dumps(
        {
            "role": viewer.role,
            "name": viewer.name,
            "sid": viewer.session,
            "exp": time.time() + SESSION_SECONDS,
        },
        separators=(",", ":"),
    ).encode()
    _set(request, response, COOKIE, _sign(runtime, payload), SESSION_SECONDS)
    return viewer


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def _set(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# ------------------------------------------------------------------------------ CSRF


def _seed(request: Request, viewer: Viewer | None) -> str:
    """What a form token derives from: the session id when signed in, else the browser's
    pre-session cookie (the sign-in form; every form when auth = 'none')."""
    if viewer is not None and viewer.session:
        return viewer.session
    seed = request.cookies.get(PRE_COOKIE) or getattr(request.state, "pre_session", "")
    if not seed:
        seed = request.state.pre_session = secrets.token_urlsafe(18)
    return str(seed)


def csrf_token(request: Request, viewer: Viewer | None) -> str:
    """The token the forms of this page carry."""
    runtime: Runtime = request.app.state.runtime
    seed = _seed(request, viewer)
    return _b64(hmac.new(_key(runtime), b"csrf:" + seed.encode(), hashlib.sha256).digest())


def keep_pre_session(request: Request, response: Response) -> None:
    """Set the pre-session cookie a page's forms were derived from, when it is new."""
    seed = getattr(request.state, "pre_session", "")
    if seed and request.cookies.get(PRE_COOKIE) != seed:
        _set(request, response, PRE_COOKIE, seed, SESSION_SECONDS)


def csrf_ok(request: Request, viewer: Viewer | None, offered: str) -> bool:
    """Whether a POSTed form token is this browser's. A bearer call needs none: a browser
    never adds an Authorization header across sites."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if token and scheme.lower() == "bearer" and viewer is not None:
        return True
    if not (viewer is not None and viewer.session) and not request.cookies.get(PRE_COOKIE):
        return False
    return bool(offered) and hmac.compare_digest(
        offered.encode(), csrf_token(request, viewer).encode()
    )


async def form(request: Request) -> dict[str, str]:
    """A small urlencoded form body as single values (the last of a repeated name)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}
