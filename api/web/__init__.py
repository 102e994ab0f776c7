"""The steering web app, served by ``pmolens serve`` at ``/`` beside the API.

Server-rendered (Jinja2) from the same analyses as the API and the report; plotly.js comes from
the installed plotly package and the app's own CSS/JS from ``static/`` — nothing is fetched from
the internet and there is no JavaScript build step. ``install(app)`` adds the pages, the static
files and the answers to "sign in first" and "no such page".
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

from pmolens.api.web import board, decisions, pages, whatif
from pmolens.api.web.page import PageError, SignInNeeded, bare_page

static = APIRouter(include_in_schema=False)

STATIC = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}


@cache
def _plotly_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@static.get("/static/plotly.min.js")
async def plotly_js() -> Response:
    return FileResponse(
        _plotly_path(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@static.get("/static/{name}")
async def static_file(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    body = resources.files("pmolens.api.web").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


ROUTERS = [static, decisions.router, board.router, whatif.router, pages.router]


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        if request.headers.get("authorization"):  # a script with a wrong token: no redirect
            return Response(
                "invalid bearer token", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return Response(status_code=303, headers={"Location": "/signin?next=" + quote(exc.target)})

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        page = bare_page(request, request.query_params.get("lang"))
        message = page.t(exc.key).format(**exc.params)
        return page.render("error.html.j2", status=exc.status, code=exc.status, message=message)

    app.add_exception_handler(SignInNeeded, sign_in_first)
    app.add_exception_handler(PageError, page_error)
