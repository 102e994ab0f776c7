"""The web app over HTTP (no browser): sign-in and its cookie, CSRF on every form, saved views
per viewer, filters in the URL, exports, precise 4xx — and the same counts as the API."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from urllib.parse import quote

import httpx
import polars as pl
import pytest

from tests.web.conftest import OPERATOR, VIEWER, Served


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def signed_in(url: str, token: str = VIEWER) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False)
    form = client.get("/signin")
    answer = client.post("/signin", data={"token": token, "csrf": _csrf(form.text), "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def viewer(served: Served) -> Iterator[httpx.Client]:
    with closing(signed_in(served.url)) as client:
        yield client


def api(served: Served, path: str, **params: object) -> httpx.Response:
    return httpx.get(
        served.url + path,
        params=params,  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {VIEWER}"},
    )


def test_sign_in_sets_a_signed_session_cookie_without_the_token(served: Served) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        first = client.get("/board?organisation=Northwind")
        assert first.status_code == 303
        assert first.headers["location"] == "/signin?next=" + quote("/board?organisation=Northwind")
        form = client.get(first.headers["location"])
        assert form.status_code == 200 and 'type="password"' in form.text
        wrong = client.post("/signin", data={"token": "nope", "csrf": _csrf(form.text)})
        assert wrong.status_code == 401 and "not known" in wrong.text
        answer = client.post(
            "/signin",
            data={
                "token": VIEWER,
                "csrf": _csrf(form.text),
                "next": "/board?organisation=Northwind",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/board?organisation=Northwind"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if "pmolens_session" in h)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        for form_of_secret in (VIEWER, base64.b64encode(VIEWER.encode()).decode()):
            assert form_of_secret not in value
        payload = base64.urlsafe_b64decode(value.split(".")[0] + "==")
        assert VIEWER.encode() not in payload and b"Vera Viewer" in payload
        board = client.get("/board?organisation=Northwind")
        assert board.status_code == 200 and "Vera Viewer" in board.text


def test_a_forged_or_tampered_session_is_not_accepted(served: Served, viewer: httpx.Client) -> None:
    value = viewer.cookies["pmolens_session"]
    body, mac = value.split(".")
    raw = base64.urlsafe_b64decode(body + "==").replace(b'"viewer"', b'"operator"')
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac
    with httpx.Client(base_url=served.url, cookies={"pmolens_session": forged}) as client:
        assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_refuses_an_open_redirect_and_a_missing_csrf(served: Served) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        form = client.get("/signin")
        evil = client.post(
            "/signin", data={"token": VIEWER, "csrf": _csrf(form.text), "next": "//evil.example/x"}
        )
        assert evil.status_code == 303 and evil.headers["location"] == "/"
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        no_csrf = client.post("/signin", data={"token": VIEWER})
        assert no_csrf.status_code == 400 and "pmolens_session" not in no_csrf.headers.get(
            "set-cookie", ""
        )


def test_sign_out_needs_the_form_token(served: Served) -> None:
    with closing(signed_in(served.url)) as client:
        page = client.get("/")
        assert client.post("/signout", data={"csrf": "forged"}).status_code == 400
        assert client.get("/").status_code == 200  # still signed in
        out = client.post("/signout", data={"csrf": _csrf(page.text)})
        assert out.status_code == 303
        client.cookies.delete("pmolens_session")
        assert client.get("/").status_code == 303


def test_the_bearer_token_still_opens_pages(served: Served) -> None:
    assert api(served, "/team/Payments").status_code == 200
    wrong = httpx.get(served.url + "/", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_saved_views_are_kept_per_viewer(served: Served, viewer: httpx.Client) -> None:
    page = viewer.get("/board?organisation=Fabrikam&lang=nl")
    token = _csrf(page.text)
    url = "/board?organisation=Fabrikam&lang=nl"
    assert viewer.post("/views", data={"name": "Ketenbord", "url": url}).status_code == 400
    saved = viewer.post("/views", data={"name": "Ketenbord", "url": url, "csrf": token})
    assert saved.status_code == 303
    listed = viewer.get("/views")
    assert (
        "Ketenbord" in listed.text
        and 'href="/board?organisation=Fabrikam&amp;lang=nl"' in listed.text
    )
    with closing(signed_in(served.url, OPERATOR)) as other:
        assert "Ketenbord" not in other.get("/views").text
    viewer.post("/views", data={"delete": "Ketenbord", "csrf": token})
    assert "Ketenbord" not in viewer.get("/views").text


def test_the_decisions_page_counts_what_the_api_counts(
    served: Served, viewer: httpx.Client
) -> None:
    html = viewer.get("/?lang=en").text
    counts = {k: int(n) for k, n in re.findall(r'data-kind="(\w+)" data-count="(\d+)"', html)}
    decisions = api(served, "/decisions", limit=10_000).json()
    assert counts == decisions["by_kind"]
    # the analyses behind them (docs/decisions.md §1), counted here from their own routes
    impediments = pl.DataFrame(api(served, "/impediments", limit=10_000).json()["items"])
    assert counts["impediment_eat"] == impediments.filter(pl.col("level") == "eat").height
    today = datetime.fromisoformat(decisions["as_of"]).date()
    epics = pl.DataFrame(api(served, "/forecast/epics").json()).with_columns(
        pl.col("target_date").str.to_date()
    )
    overdue = epics.filter(pl.col("target_date") < today)
    below = epics.filter(
        (pl.col("p_on_time") < 0.5) & ~(pl.col("target_date") < today).fill_null(False)
    )
    assert counts["epic_overdue"] == overdue.height
    assert counts["epic_below_target_chance"] == below.height
    conflicts = pl.DataFrame(api(served, "/dependencies/conflicts").json())
    planted = served.chain
    row = conflicts.filter(
        (pl.col("blocker_key") == planted.blocker["key"])
        & (pl.col("dependent_key") == planted.dependent["key"])
    )
    assert row.height == 1 and row["timing"][0] == "conflict" and row["cross_org"][0]
    assert planted.dependent["key"] in html  # the planted conflict is a decision


def test_the_board_draws_the_planted_cross_org_conflict(
    served: Served, viewer: httpx.Client
) -> None:
    html = viewer.get("/board?organisation=Northwind").text
    arrows = re.findall(
        r'<path class="arrow (\w+)( cross-org)?" data-from="([^"]+)" data-to="([^"]+)"', html
    )
    red_cross = [a for a in arrows if a[0] == "conflict" and a[1]]
    assert red_cross, "no cross-organisation conflict arrow on the Northwind board"
    blocker_card = red_cross[0][2]
    assert f'data-card="{blocker_card}"' in html
    card_tag = re.search(r'<a class="card([^"]*)"[^>]*data-card="' + re.escape(blocker_card), html)
    assert card_tag and "outside" in card_tag.group(1)  # Fabrikam's card, outside the filter
    # the board counts the same arrows as the API's board model
    model = api(served, "/program-board", organisation="Northwind").json()
    drawn = {(a[2], a[3]) for a in arrows if a[0] == "conflict"}
    assert drawn == {
        (a["from_card"], a["to_card"]) for a in model["arrows"] if a["timing"] == "conflict"
    }


def test_lists_page_and_export(served: Served, viewer: httpx.Client) -> None:
    page = viewer.get("/list/findings?limit=5")
    assert page.status_code == 200 and "Rows 1–5 of" in page.text and 'rel="next"' in page.text
    csv = viewer.get("/list/red-lines?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    red = pl.read_csv(io.BytesIO(csv.content))
    api_red = api(served, "/dependencies/red-lines").json()
    assert red.height == api_red["red_lines"]
    parquet = viewer.get("/list/impediments?format=parquet&organisation=Contoso")
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame.height > 0 and set(frame["organisation"].unique()) == {"Contoso"}


def test_dutch_from_the_header_or_the_browser(served: Served, viewer: httpx.Client) -> None:
    nl = viewer.get("/board", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
    assert '<html lang="nl">' in nl.text and "Programmabord" in nl.text
    en = viewer.get("/board?lang=en", headers={"Accept-Language": "nl"})
    assert '<html lang="en">' in en.text and "Program board" in en.text


def test_bad_requests_get_a_precise_answer(served: Served, viewer: httpx.Client) -> None:
    missing = viewer.get("/team/Nobody?lang=nl")
    assert missing.status_code == 404 and "Team Nobody bestaat hier niet." in missing.text
    assert viewer.get("/org/Nowhere").status_code == 404
    assert viewer.get("/list/nothing").status_code == 404
    assert viewer.get("/board?colour=red").status_code == 422  # a typo must not widen a view
    assert viewer.get("/board?date_from=yesterday").status_code == 422


def test_pages_send_a_strict_content_security_policy(served: Served, viewer: httpx.Client) -> None:
    page = viewer.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "https:" not in page.text.split("<main", 1)[0]  # nothing fetched from elsewhere
    assert viewer.get("/static/plotly.min.js").status_code == 200
