from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pmolens.reports.i18n import CATALOGUE, LANGS
from pmolens.reports.steering import build_report
from pmolens.warehouse.store import Warehouse
from tests.api.conftest import chain_settings, seed

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    settings = chain_settings(tmp)
    with Warehouse(settings.warehouse_path) as wh:
        seed(wh, settings)
        yield wh, settings


def test_every_label_has_both_languages():
    for key, entry in CATALOGUE.items():
        assert set(entry) == set(LANGS), key


def test_report_is_self_contained_and_escapes_untrusted_text(warehouse):
    wh, settings = warehouse
    page = build_report(wh, settings, lang="en", as_of=datetime(2026, 11, 22, tzinfo=UTC))
    assert "<script src=" not in page and "Plotly.newPlot" in page  # plotly.js inlined
    assert "<script>alert(1)</script>" not in page
    assert '<img src=x onerror="window.__pwned=1">' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; epic" in page
    # every <script> element is ours: plotly, figure specs and the loader
    assert len(re.findall(r"<script\b", page)) == 2 + page.count('<script type="application/json"')
    assert "Steering report" in page and "2026-11-22" in page


def test_dutch_report_and_organisation_scope(warehouse):
    wh, settings = warehouse
    page = build_report(wh, settings, lang="nl", organisation="Contoso", plotly="cdn")
    assert "Stuurrapportage" in page and "Portfolio-overzicht" in page
    assert '<script src="https://cdn.plot.ly/' in page and len(page) < 200_000
    portfolio = page.split('<section id="portfolio">', 1)[1].split("</section>", 1)[0]
    assert "NW-1" not in portfolio and "CO-1" in portfolio
    # cross-organisation views name the partner's items that Contoso's work is linked to
    dependencies = page.split('<section id="dependencies">', 1)[1].split("</section>", 1)[0]
    assert "CO-2 → NW-3" in dependencies
    with pytest.raises(ValueError, match="unknown organisation"):
        build_report(wh, settings, organisation="Nobody")


@pytest.mark.browser
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (make chromium)"
)
def test_report_renders_in_headless_chromium_without_running_injected_code(warehouse, tmp_path):
    from playwright.sync_api import sync_playwright

    wh, settings = warehouse
    path = tmp_path / "steering.html"
    path.write_text(build_report(wh, settings, lang="en"), encoding="utf-8")
    errors: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_selector(".main-svg", timeout=20_000)
        assert page.locator(".js-plotly-plot").count() >= 2
        assert page.evaluate("window.__pwned") is None
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "steering.png"), full_page=True)
        browser.close()
    assert errors == [] and dialogs == []


def test_report_as_of_the_sync_reads_the_kept_results(warehouse, monkeypatch):
    """Without --as-of the report answers from the results computed after the sync."""
    import pmolens.warehouse.results as results

    wh, settings = warehouse

    def recompute(inputs):
        raise AssertionError("recomputed an analysis that was kept for this generation")

    monkeypatch.setitem(results.ANALYSES, "portfolio", recompute)
    page = build_report(wh, settings, lang="en", plotly="cdn")
    assert "Portfolio overview" in page
    with pytest.raises(AssertionError, match="recomputed"):
        build_report(wh, settings, as_of=datetime(2026, 11, 22, tzinfo=UTC), plotly="cdn")


@pytest.fixture(scope="module")
def with_red_line(tmp_path_factory):
    """The seed plus one conflict: NW-5 (Web, due 1 Feb) blocks NW-4 (App, due 10 Jan)."""
    from datetime import date

    from pmolens.pipeline.refresh import refresh
    from pmolens.warehouse.store import Staged
    from tests.factories import frame, work_items

    settings = chain_settings(tmp_path_factory.mktemp("decisions"))
    with Warehouse(settings.warehouse_path) as wh:
        seed(wh, settings)
        items = work_items(
            *[
                {"item_id": f"nw:{n}", "source": "nw", "key": f"NW-{n}", "team": team,
                 "organisation": "Northwind", "due_date": due}
                for n, team, due in ((4, "App", date(2026, 1, 10)), (5, "Web", date(2026, 2, 1)))
            ]
        )  # fmt: skip
        link = frame(
            "links",
            {"source": "nw", "link_id": "L2", "from_item": "nw:5", "to_item": "nw:4",
             "kind": "blocks", "raw_type": "Blocks"},
        )  # fmt: skip
        run_id = wh.begin_run("nw", "incremental", None)
        wh.commit_sync(
            run_id, "nw", Staged(work_items=[items], links=[link]), live_ids=None, cursor=None
        )
        refresh(wh, settings, as_of=datetime(2026, 1, 5, tzinfo=UTC))
        yield wh, settings


@pytest.mark.parametrize(
    ("lang", "title", "who", "what"),
    [
        ("en", "What needs a decision today", "Who acts", "re-plan one of the two"),
        ("nl", "Wat vandaag een besluit vraagt", "Actiehouder", "herplan één van beide"),
    ],
)
def test_the_decisions_block_opens_the_report(with_red_line, lang, title, who, what):
    """Issue 13: "What needs a decision today" is the first section, in both languages, with
    one counter per kind and the same lines as GET /decisions, items linked."""
    wh, settings = with_red_line
    page = build_report(wh, settings, lang=lang, plotly="cdn")
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections[0] == "decisions" and sections[1] == "summary"
    block = page.split('<section id="decisions">', 1)[1].split("</section>", 1)[0]
    assert f"<h2>{title}</h2>" in block and f"<th>{who}</th>" in block
    assert len(re.findall(r"<div><b>[^<]*</b><span>", block)) == 8  # the total and 7 kinds
    assert what in block and "Scrum of Scrums Master" in block
    assert '<a href="https://tracker.example/browse/NW-4"' in block  # the waiting item
    assert '<a href="https://tracker.example/browse/NW-5"' in block  # the blocking item
