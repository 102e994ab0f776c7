"""The web app in headless Chromium (Debian's package, driven by Playwright): sign in, the
decisions page, a red line to its epic, the board filtered to one organisation with the planted
cross-organisation red arrow, Dutch, a what-if that moves the date, and an export — with no
console errors. Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.web.conftest import VIEWER, Served

ARTIFACTS = Path(__file__).parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (make chromium)"
)


@pytest.fixture(scope="module")
def browser_page(served: Served) -> Iterator[tuple[object, list[str]]]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        yield page, problems
        context.close()
        browser.close()


def test_a_steering_meeting_in_the_browser(served: Served, browser_page) -> None:
    page, problems = browser_page
    base = served.url
    chain = served.chain

    # sign in: the decisions page asks for a token once
    page.goto(base + "/")
    assert "/signin" in page.url
    page.fill("#token", "wrong-token")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("That token is not known")
    # the refused sign-in is a 401, which Chromium logs as a failed load: expected, not a fault
    assert problems == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    problems.clear()
    page.fill("#token", VIEWER)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert "Vera Viewer" in page.inner_text("header")
    assert page.locator("h1").inner_text() == "What needs a decision today"
    page.screenshot(path=str(ARTIFACTS / "web-decisions.png"), full_page=True)

    # follow the planted red line to its epic
    red = page.locator("tr.kind-red_line", has_text=chain.dependent["key"]).first
    red.locator("a[href^='/epic/']").first.click()
    assert page.url.startswith(base + "/epic/")
    assert page.locator("h1").inner_text().startswith("Epic ")
    upstream = page.locator("section[aria-labelledby=up] table")
    assert upstream.locator("tbody tr").count() >= 1
    epic_url = page.url

    # the board, filtered to Northwind, still shows the red arrow from Fabrikam
    page.goto(base + "/board?organisation=Northwind")
    arrow = page.locator("path.arrow.conflict.cross-org")
    assert arrow.count() >= 1
    blocker_card = arrow.first.get_attribute("data-from")
    card = page.locator(f'a.card[data-card="{blocker_card}"]')
    assert card.count() == 1 and "outside" in (card.get_attribute("class") or "")
    page.screenshot(path=str(ARTIFACTS / "web-board.png"), full_page=True)

    # switch to Dutch from the header
    page.click("header a.lang")
    assert "lang=nl" in page.url
    assert page.locator("h1").inner_text() == "Programmabord"
    assert page.locator("html").get_attribute("lang") == "nl"

    # a what-if: the planted blocker done much later moves the epic's P85
    page.goto(epic_url.replace("/epic/", "/what-if/") + "?lang=en")
    current = page.locator("td[data-run=current][data-field=p85]").inner_text()
    page.select_option("select[name=pin_item]", chain.blocker["item_id"])
    late = chain.blocker["planned_end"].date() + timedelta(days=120)
    page.fill("input[name=pin_day]", late.isoformat())
    page.click("form.whatif button[type=submit]")
    scenario = page.locator("td[data-run=scenario][data-field=p85]").inner_text()
    assert scenario != current, (current, scenario)
    page.screenshot(path=str(ARTIFACTS / "web-what-if.png"), full_page=True)
    shared = page.locator("a.share").get_attribute("href")
    assert shared and "pin=" in shared

    # export a list from its page
    page.goto(base + "/list/red-lines")
    with page.expect_download() as download:
        page.click("a:has-text('Export CSV')")
    saved = ARTIFACTS / "web-red-lines.csv"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("blocker_id") or "timing" in text.splitlines()[0]
    assert chain.dependent["key"] in text

    assert problems == [], problems
