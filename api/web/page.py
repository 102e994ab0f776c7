"""What every page of the web app shares: who looks, in which language, through which filters,
as of when — and how a page becomes HTML.

Filters live in the URL (organisation, team, epic, period, as-of, language), so any view is
shareable and bookmarkable; ``Page.url`` builds links that keep them. Templates are Jinja2 with
autoescaping; every sentence comes from the nl/en catalogue (``reports.i18n``), numbers and
dates through Babel.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import jinja2
import polars as pl
from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from pmolens.api.deps import (
    AS_OF_DESCRIPTION,
    AsOfMoment,
    Day,
    GenerationCache,
    Results,
    generation_cache,
)
from pmolens.api.runtime import Runtime
from pmolens.api.web import labels  # noqa: F401  (registers the app's labels)
from pmolens.api.web.session import Viewer, csrf_token, keep_pre_session, viewer_of
from pmolens.reports import decision_text, finding_text, i18n
from pmolens.reports.i18n import LANGS, Lang, translator


class SignInNeeded(Exception):
    """Raised by a page dependency when nobody is signed in; answered by a redirect."""

    def __init__(self, target: str) -> None:
        self.target = target


class PageError(Exception):
    """A request the page cannot answer (unknown team, bad date): a 4xx page, one sentence."""

    def __init__(self, status: int, key: str, **params: Any) -> None:
        self.status, self.key, self.params = status, key, params


@dataclass(frozen=True)
class Filters:
    """The view's filters, as in the URL."""

    organisation: str | None = None
    team: str | None = None
    epic: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    as_of: datetime | None = None
    lang: Lang | None = None

    def query(self) -> dict[str, str]:
        values = {
            "organisation": self.organisation,
            "team": self.team,
            "epic": self.epic,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "lang": self.lang,
        }
        return {k: v for k, v in values.items() if v}


async def url_filters(
    organisation: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
    epic: Annotated[str | None, Query(max_length=200)] = None,
    date_from: Annotated[Day | None, Query()] = None,
    date_to: Annotated[Day | None, Query()] = None,
    as_of: Annotated[AsOfMoment | None, Query(description=AS_OF_DESCRIPTION)] = None,
    lang: Annotated[Literal["en", "nl"] | None, Query()] = None,
) -> Filters:
    return Filters(organisation, team, epic, date_from, date_to, as_of, lang)


def _accepted_language(request: Request) -> Lang:
    """The first of nl/en in the browser's Accept-Language (en when neither)."""
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return "en"


@dataclass
class Page:
    request: Request
    runtime: Runtime
    viewer: Viewer
    filters: Filters
    lang: Lang
    results: Results = field(init=False)

    def __post_init__(self) -> None:
        self.t = translator(self.lang)
        self.results = Results(self.runtime, self.filters.as_of)

    # -- links that keep the view's filters ------------------------------------------------

    def url(self, path: str, **changes: Any) -> str:
        """``path`` with this view's filters, changed by ``changes`` (None drops one)."""
        query: dict[str, Any] = {**self.filters.query(), **changes}
        query = {k: v for k, v in query.items() if v is not None and v != ""}
        return path + ("?" + urlencode(query, doseq=True) if query else "")

    def here(self, **changes: Any) -> str:
        """This page's URL with ``changes`` to its query (paging, language, export)."""
        query: dict[str, Any] = dict(self.request.query_params.multi_items())
        merged: dict[str, Any] = {**query, **changes}
        merged = {k: v for k, v in merged.items() if v is not None and v != ""}
        return self.request.url.path + ("?" + urlencode(merged, doseq=True) if merged else "")

    def with_filters(self, **changes: Any) -> Page:
        return Page(
            self.request, self.runtime, self.viewer, replace(self.filters, **changes), self.lang
        )

    # -- data --------------------------------------------------------------------------------

    def get(self, name: str) -> pl.DataFrame:
        """An analysis as of the view's moment."""
        return self.results.get(name)

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A value derived from this generation's data (and the view's as-of), built once:
        pages asked again with the same filters do not recompute it."""
        generation = self.runtime.warehouse.generation()
        return _cache(self.runtime).get(generation, (key, self.filters.as_of), build)

    def fragment(
        self, template: str, key: Hashable, values: Callable[[], dict[str, Any]]
    ) -> Markup:
        """A part of a page that is the same for every viewer (no name, no form token),
        rendered once per generation, filters and language, and kept."""

        def build() -> Markup:
            html = (
                _env()
                .get_template(template)
                .render(page=self, t=self.t, lang=self.lang, f=self.filters, **values())
            )
            return Markup(html)  # noqa: S704  (rendered by our autoescaping template)

        # the filters are in the key: links inside the part keep them
        return self.cached(("fragment", template, key, self.lang, self.filters), build)

    def scoped(
        self,
        frame: pl.DataFrame,
        org: str = "organisation",
        team: str = "team",
    ) -> pl.DataFrame:
        """Rows of the view's organisation and team (a filter not set is not applied)."""
        if self.filters.organisation and org in frame.columns:
            frame = frame.filter(pl.col(org) == self.filters.organisation)
        if self.filters.team and team in frame.columns:
            frame = frame.filter(pl.col(team) == self.filters.team)
        return frame

    def organisations(self) -> list[str]:
        def build() -> list[str]:
            frame = self.runtime.warehouse.query("SELECT organisation FROM organisations")
            return sorted(frame["organisation"].to_list())

        return list(self.cached("organisations", build))

    def teams(self) -> list[tuple[str, str]]:
        """(organisation, team) of every team with work, sorted."""

        def build() -> list[tuple[str, str]]:
            rows = self.get("dependency_sos").select("organisation", "team").drop_nulls()
            return sorted(rows.unique().iter_rows())

        return list(self.cached("teams", build))

    # -- output ------------------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = (
            _env()
            .get_template(template)
            .render(page=self, t=self.t, lang=self.lang, f=self.filters, **values)
        )
        response = HTMLResponse(html, status_code=status)
        keep_pre_session(self.request, response)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def tf(self, label: str, /, **params: Any) -> str:
        """A catalogue sentence with its parameters filled in."""
        return self.t(label).format(**params)

    def sentence(self, row: dict[str, Any]) -> str:
        """A decision or change line as a sentence in the page's language."""
        return decision_text.sentence(str(row["detail_key"]), row.get("detail_params"), self.t)

    def finding(self, row: dict[str, Any]) -> str:
        """A finding's message in the page's language."""
        return finding_text.finding_sentence(row, self.t)

    def kind_label(self, kind: str) -> str:
        return decision_text.kind_label(kind, self.t)

    def who_acts(self, role: str | None) -> str:
        return decision_text.who_acts(role, self.t)

    def item_link(self, item_id: str | None) -> str:
        return self.url("/item/" + quote(item_id or "", safe=""))

    def epic_link(self, epic_id: str | None) -> str:
        return self.url("/epic/" + quote(epic_id or "", safe=""))

    def team_link(self, team: str | None, organisation: str | None = None) -> str:
        return self.url("/team/" + quote(team or "", safe=""), organisation=organisation, team=None)

    def org_link(self, organisation: str | None) -> str:
        return self.url("/org/" + quote(organisation or "", safe=""), organisation=None, team=None)

    @property
    def csrf(self) -> str:
        return csrf_token(self.request, self.viewer)

    @property
    def as_of_text(self) -> str:
        moment = self.filters.as_of or self.runtime.results.kept_as_of()
        return i18n.moment(moment, self.lang)

    def number(self, value: float | int | None, decimals: int = 1) -> str:
        return i18n.number(value, self.lang, decimals)

    def percent(self, value: float | None) -> str:
        return i18n.percent(value, self.lang)

    def day(self, value: date | datetime | None) -> str:
        return i18n.day(value, self.lang)

    def short_day(self, value: date, with_year: bool = False) -> str:
        return i18n.short_day(value, self.lang, with_year)

    def moment(self, value: datetime | None) -> str:
        return i18n.moment(value, self.lang)


CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
"""Nothing from elsewhere: scripts only from this server (plotly.js needs eval for its
compiled regl shaders; inline styles are its positioning)."""


async def page(
    request: Request,
    filters: Annotated[Filters, Depends(url_filters)],
) -> Page:
    runtime: Runtime = request.app.state.runtime
    viewer = viewer_of(request)
    if viewer is None:
        raise SignInNeeded(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        )
    lang = filters.lang or _accepted_language(request)
    return Page(request, runtime, viewer, filters, lang)


PageDep = Annotated[Page, Depends(page)]


def bare_page(request: Request, lang: str | None, *, anonymous: bool = False) -> Page:
    """A page outside the signed-in flow (error answers; the sign-in form, ``anonymous``: its
    form token must come from the pre-session cookie): no filters, the language asked for or the
    browser's."""
    chosen: Lang = lang if lang in LANGS else _accepted_language(request)
    viewer = None if anonymous else viewer_of(request)
    viewer = viewer or Viewer("viewer", "")
    return Page(request, request.app.state.runtime, viewer, Filters(), chosen)


WEB_CACHE = 1024
"""Values and page parts kept per generation for the web app (its own LRU beside the API's)."""


def _cache(runtime: Runtime) -> GenerationCache:
    return generation_cache(runtime, "web", WEB_CACHE)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pmolens.api.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def redirect(url: str) -> Response:
    """After a POST: see the result with a GET (303)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path on this server is a place to go back to after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
