"""The steering report printed to PDF (issue 14, point 2), checked in the PDF itself.

Chromium writes a tagged PDF: every ``<figure>`` (a chart and its question) and every ``<table>``
is a structure element whose marked content can be found on the page. That gives each chart's and
each table's box per page, exactly, so the checks below are geometric: no chart box meets a table
box (the reported bug: the net-flow chart printed over the "Programme backlogs" table), no chart
is on two pages, every table continued on a page starts with its header row. A deliberately broken
print CSS proves the check finds such an overlap.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pmolens.api.app import create_app
from pmolens.api.cli import app as cli
from pmolens.api.runtime import Runtime, make_runtime
from pmolens.pipeline.refresh import refresh
from pmolens.pipeline.sync import sync_all
from pmolens.reports import pdf as pdf_module
from pmolens.reports.pdf import Printed, print_html
from pmolens.reports.steering import build_report
from pmolens.simulator import DEMO_TOKEN, Simulator, demo_settings
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.api.conftest import OPERATOR, VIEWER, auth, chain_settings, seed

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
NO_CHROMIUM = shutil.which("chromium") is None
PT_PER_MM = 72 / 25.4
FOOTER_PT = 15 * PT_PER_MM  # the template's bottom page margin
CONTENT_PT = (297 - 2 * 12) * PT_PER_MM  # A4 landscape less the side margins
# the simulated chain of 500 items prints to 34 pages (the demo's 2,000 to 39): tables are cut at
# their first rows, so the count hardly grows with the data; a count far off
# means blank pages or a layout that no longer breaks where it should
MIN_PAGES, MAX_PAGES = 15, 45


# ------------------------------------------------------------------ reading the PDF's layout


@dataclass
class Box:
    """What one figure or table occupies on one page (PDF points, top-down)."""

    kind: str  # Figure | Table
    block: int  # the structure element: the same figure or table on every page it is on
    x0: float = float("inf")
    top: float = float("inf")
    x1: float = float("-inf")
    bottom: float = float("-inf")
    header_top: float = float("inf")  # tables: the highest header cell content
    body_top: float = float("inf")  # tables: the highest body cell content

    def add(self, obj: dict) -> None:
        self.x0, self.x1 = min(self.x0, obj["x0"]), max(self.x1, obj["x1"])
        self.top, self.bottom = min(self.top, obj["top"]), max(self.bottom, obj["bottom"])

    def overlaps(self, other: Box, tolerance: float = 0.5) -> bool:
        across = min(self.x1, other.x1) - max(self.x0, other.x0)
        down = min(self.bottom, other.bottom) - max(self.top, other.top)
        return across > tolerance and down > tolerance


@dataclass
class Page:
    number: int
    width: float
    height: float
    body: str
    footer: str
    boxes: list[Box] = field(default_factory=list)


def _content_owners(pdf) -> dict[tuple[int, int], tuple[tuple[str, int], str | None]]:
    """(page number, marked-content id) -> ((Figure|Table, element id), TH|TD|None).

    Read from the structure tree itself: pdfplumber's per-page tree leaves out elements that begin
    on an earlier page (a table continued), and its document tree files every piece of an element
    under the element's first page."""
    from pdfminer.pdftypes import PDFObjRef, resolve1
    from pdfminer.psparser import PSLiteral

    pages = {page.page_obj.pageid: page.page_number for page in pdf.pages}
    owners: dict[tuple[int, int], tuple[tuple[str, int], str | None]] = {}
    root = resolve1(pdf.doc.catalog["StructTreeRoot"])
    stack: list[tuple[object, int | None, tuple[str, int] | None, str | None]] = [
        (root.get("K"), None, None, None)
    ]
    seen: set[int] = set()
    while stack:
        kids, page, block, cell = stack.pop()
        kids = resolve1(kids)
        for ref in kids if isinstance(kids, list) else [kids]:
            kid = resolve1(ref)
            if isinstance(kid, int):  # marked content on the element's page
                if block is not None and page is not None:
                    owners[(page, kid)] = (block, cell)
                continue
            if not isinstance(kid, dict):
                continue
            on = pages.get(kid["Pg"].objid, page) if isinstance(kid.get("Pg"), PDFObjRef) else page
            if "MCID" in kid:  # marked content on a page of its own
                if block is not None and on is not None:
                    owners[(on, kid["MCID"])] = (block, cell)
                continue
            if "S" not in kid or id(kid) in seen:
                continue
            seen.add(id(kid))
            kind = kid["S"].name if isinstance(kid["S"], PSLiteral) else str(kid["S"])
            inner = block
            if block is None and kind in ("Figure", "Table"):
                inner = (kind, len(seen))
            if "K" in kid:
                stack.append((kid["K"], on, inner, kind if kind in ("TH", "TD") else cell))
    return owners


def read_layout(data: bytes) -> list[Page]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        owners = _content_owners(pdf)
        pages = []
        for page in pdf.pages:
            limit = page.height - FOOTER_PT
            body = "".join(c["text"] for c in page.chars if c["top"] < limit)
            footer = "".join(c["text"] for c in page.chars if c["top"] >= limit)
            found = Page(page.page_number, page.width, page.height, body, footer)
            boxes: dict[int, Box] = {}
            for obj in page.chars + page.rects + page.curves + page.lines + page.images:
                owner = owners.get((page.page_number, obj.get("mcid")))
                if owner is None:
                    continue
                (kind, block), cell = owner
                box = boxes.setdefault(block, Box(kind, block))
                box.add(obj)
                if cell == "TH":
                    box.header_top = min(box.header_top, obj["top"])
                elif cell == "TD":
                    box.body_top = min(box.body_top, obj["top"])
            found.boxes = list(boxes.values())
            pages.append(found)
    return pages


def overlaps(pages: list[Page]) -> list[str]:
    return [
        f"page {page.number}: {a.kind} {a.block} over {b.kind} {b.block}"
        for page in pages
        for i, a in enumerate(page.boxes)
        for b in page.boxes[i + 1 :]
        if a.overlaps(b)
    ]


def check_print_layout(pages: list[Page], page_html: str, charts: int) -> None:
    """What both the PDF and the browser's own print must hold."""
    assert MIN_PAGES <= len(pages) <= MAX_PAGES, len(pages)
    for page in pages:  # A4 landscape, no page without text (no blank last page)
        assert (round(page.width), round(page.height)) == (842, 595)
        assert page.body.strip(), f"page {page.number} has no text"
    assert overlaps(pages) == []
    on_pages: dict[int, list[int]] = defaultdict(list)
    for page in pages:
        for box in page.boxes:
            on_pages[box.block].append(page.number)
            if box.kind == "Table":  # the header row first, also where a table continues
                assert box.header_top <= box.body_top + 0.5, (page.number, box)
    figures = [box for page in pages for box in page.boxes if box.kind == "Figure"]
    # every figure (a chart or its note, with its question) whole on one page
    assert len(figures) == page_html.count('<figure class="figure-block">')
    assert all(len(on_pages[box.block]) == 1 for box in figures)
    # charts at the full print width, not the screen's: a chart drawn for a narrow window prints
    # at half width, one drawn for a wide window runs past the margin (and shrinks the page)
    widths = [box.x1 - box.x0 for box in figures]
    assert max(widths) <= CONTENT_PT + 8, max(widths)  # a node label may pass the plot a little
    assert sum(width >= 0.97 * CONTENT_PT for width in widths) >= charts > 0, widths


def footer_of(page_html: str) -> str:
    found = re.search(r'<meta name="pmolens-footer" content="([^"]+)">', page_html)
    assert found is not None
    return found.group(1)


# ------------------------------------------------------------------ a small simulated chain


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Iterator[Runtime]:
    """Three organisations on three trackers, synced over HTTP from the simulator (500 items)."""
    directory = tmp_path_factory.mktemp("pdf-chain")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PMOLENS_DEMO_TOKEN", DEMO_TOKEN)
        env.setenv("TEST_VIEWER_TOKEN", VIEWER)
        env.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
        with Simulator(seed=7, size=500) as sim:
            data = demo_settings(sim.url)
            data["warehouse"] = {"path": str(directory / "pdf.duckdb")}
            data["server"] = {
                "auth": "token",
                "tokens": [
                    {"role": "viewer", "env": "TEST_VIEWER_TOKEN"},
                    {"role": "operator", "env": "TEST_OPERATOR_TOKEN"},
                ],
            }
            settings = settings_from_dict(data, base_dir=directory)
            with Warehouse(settings.warehouse_path) as warehouse:
                outcomes = asyncio.run(sync_all(warehouse, settings, full=True))
                assert all(o.ok for o in outcomes), outcomes
                refresh(warehouse, settings)
        runtime = make_runtime(settings)
        yield runtime
        runtime.warehouse.close()


@dataclass
class Report:
    html: str
    printed: Printed
    pages: list[Page]


@pytest.fixture(scope="module")
def report(chain: Runtime) -> Report:
    page_html = build_report(chain.warehouse, chain.settings, lang="en", plotly="inline")
    printed = print_html(page_html, "en")
    return Report(page_html, printed, read_layout(printed.pdf))


# ------------------------------------------------------------------ the PDF


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_the_pdf_prints_every_chart_and_table_whole_and_apart(report: Report):
    """A4 landscape, page count in bounds, text on every page, no chart over a table, no chart
    cut across pages, charts at full width, table headers repeated."""
    check_print_layout(report.pages, report.html, report.printed.charts)
    assert report.printed.pages == len(report.pages)
    assert report.printed.pdf.startswith(b"%PDF")
    ARTIFACTS.mkdir(exist_ok=True)
    import pdfplumber

    with pdfplumber.open(io.BytesIO(report.printed.pdf)) as pdf:
        pdf.pages[0].to_image(resolution=110).save(ARTIFACTS / "steering-pdf-page-1.png")
    (ARTIFACTS / "steering.pdf").write_bytes(report.printed.pdf)


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_every_page_has_its_number_and_the_data_moment_in_the_footer(report: Report):
    total = len(report.pages)
    moment = footer_of(report.html)
    assert moment.startswith("Data as of: ")
    for page in report.pages:
        assert f"{page.number} / {total}" in page.footer, page.footer
        # once: the PDF's footer replaces the one the print CSS gives the browser's print
        assert page.footer.count(moment) == 1, page.footer


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_the_decisions_and_the_summary_come_first_each_later_section_on_a_new_page(
    report: Report,
):
    first = report.pages[0].body
    assert first.startswith("Steering report") and "What needs a decision today" in first

    def opening(title: str) -> int:
        """The page a section opens: its title is the first text on the page."""
        return next(p.number for p in report.pages if p.body.startswith(title))

    summary = next(p.number for p in report.pages if "Executive summary" in p.body)
    later = ["Portfolio overview", "Backlog health", "Dependencies", "Forecasts", "Flow"]
    assert summary < opening(later[0])
    assert [opening(title) for title in later] == sorted(opening(title) for title in later)


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_the_check_finds_a_chart_printed_over_a_table(report: Report):
    """The reported fault, made on purpose: a figure that takes no room in the print layout
    (its chart drawn over what follows) is what ``overlaps`` reports."""
    head, rest = report.html.split("<main>", 1)
    backlog = re.search(r'<section id="backlog">.*?</section>', rest, re.S)
    assert backlog is not None  # its charts come before its tables
    loader = rest[rest.index("</main>") :]
    broken = (head + "<main>" + backlog.group(0) + loader).replace(
        "</head>", "<style>@media print { .figure-block { height: 30px; } }</style></head>", 1
    )
    pages = read_layout(print_html(broken, "en").pdf)
    found = overlaps(pages)
    assert any("Figure" in line and "Table" in line for line in found), found


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
@pytest.mark.parametrize("window", [700, 1680])
def test_the_browsers_own_print_follows_the_same_print_css(report: Report, tmp_path, window):
    """Ctrl+P of the HTML file in a narrow and a wide window (no PDF renderer preparing the
    page): the print CSS and the loader's beforeprint redraw give the same layout, footer
    included. Without that redraw the charts print at half width (700) or past the margin
    (1680)."""
    from playwright.sync_api import sync_playwright

    path = tmp_path / "steering.html"
    path.write_text(report.html, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), args=pdf_module.CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": window, "height": 1000})
        page.goto(path.as_uri())
        page.wait_for_function("window.__pmolensChartsReady === true", timeout=60_000)
        data = page.pdf(prefer_css_page_size=True, tagged=True)
        browser.close()
    pages = read_layout(data)
    check_print_layout(pages, report.html, report.printed.charts)
    assert abs(len(pages) - len(report.pages)) <= 1
    moment = footer_of(report.html)
    assert all(moment in p.footer and f"{p.number} / {len(pages)}" in p.footer for p in pages)


# ------------------------------------------------------------------ GET /reports/steering.pdf


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_the_pdf_route_answers_a_dutch_pdf_to_a_viewer(chain: Runtime):
    from fastapi.testclient import TestClient

    with TestClient(create_app(chain)) as client:
        assert client.get("/reports/steering.pdf").status_code == 401
        answer = client.get("/reports/steering.pdf", headers=auth(VIEWER), params={"lang": "nl"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        refused = client.get(
            "/reports/steering.pdf", headers=auth(VIEWER), params={"organisation": "Nobody"}
        )
        assert refused.status_code == 422 and "unknown organisation" in refused.text
    pages = read_layout(answer.content)
    assert pages[0].body.startswith("Stuurrapportage")
    assert all(
        "Peildatum: " in p.footer and f"{p.number} / {len(pages)}" in p.footer for p in pages
    )


def test_the_pdf_route_without_chromium_is_503_in_one_sentence(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    monkeypatch.setattr(pdf_module, "chromium_path", lambda: None)
    settings = chain_settings(tmp_path)
    runtime = make_runtime(settings)
    seed(runtime.warehouse, settings)
    try:
        with TestClient(create_app(runtime)) as client:
            answer = client.get("/reports/steering.pdf", headers=auth(VIEWER))
            dutch = client.get("/reports/steering.pdf", headers=auth(VIEWER), params={"lang": "nl"})
    finally:
        runtime.warehouse.close()
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert "chromium" in detail and detail.endswith(").") and "\n" not in detail
    assert dutch.status_code == 503 and dutch.json()["detail"].startswith("Geen Chromium")


def test_one_pdf_at_a_time_while_the_server_keeps_answering(monkeypatch, tmp_path):
    """Printing runs in a worker thread, one at a time: of three requests at once one prints and
    two wait, and /health answers while a print is held open (the event loop is not blocked)."""
    import uvicorn

    import pmolens.api.routes.reports as route
    from tests.web.conftest import free_port

    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    lock = threading.Lock()
    busy, most, printed = 0, 0, 0
    rendering, release = threading.Event(), threading.Event()

    def held_pdf(*args, **kwargs) -> Printed:
        """A print that blocks its thread until the test lets it finish."""
        nonlocal busy, most, printed
        with lock:
            busy += 1
            most = max(most, busy)
        rendering.set()
        release.wait(timeout=20)
        time.sleep(0.05)
        with lock:
            busy -= 1
            printed += 1
        return Printed(b"%PDF-1.7 fake", charts=0, seconds=0.05)

    monkeypatch.setattr(route, "build_pdf", held_pdf)
    settings = chain_settings(tmp_path)
    runtime = make_runtime(settings)
    seed(runtime.warehouse, settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    answers: list[httpx.Response] = []
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"

        def fetch() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                answers.append(client.get("/reports/steering.pdf", headers=auth(VIEWER)))

        fetchers = [threading.Thread(target=fetch) for _ in range(3)]
        for f in fetchers:
            f.start()
        assert rendering.wait(timeout=20)
        time.sleep(0.3)  # the two others have arrived and wait for the slot
        with httpx.Client(base_url=base, timeout=10) as client:
            health = client.get("/health")  # answered while the print is held
        held = (busy, printed)
        release.set()
        for f in fetchers:
            f.join(timeout=30)
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=10)
        runtime.warehouse.close()
    assert health.status_code == 200 and held == (1, 0)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.headers["content-type"] == "application/pdf" for a in answers)
    assert most == 1 and printed == 3


# ------------------------------------------------------------------ pmolens report --pdf


def _config(tmp_path: Path) -> Path:
    """A config over a small seeded warehouse (the API tests' two organisations)."""
    settings = chain_settings(tmp_path)
    with Warehouse(settings.warehouse_path) as warehouse:
        seed(warehouse, settings)
    path = tmp_path / "pmolens.toml"
    path.write_text(
        f'[warehouse]\npath = "{settings.warehouse_path.as_posix()}"\n\n'
        '[[organisations]]\nname = "Northwind"\n\n[[organisations]]\nname = "Contoso"\n',
        encoding="utf-8",
    )
    return path


def test_report_pdf_without_chromium_says_so_in_one_line_and_exits_2(monkeypatch, tmp_path):
    monkeypatch.setattr(pdf_module, "chromium_path", lambda: None)
    result = CliRunner().invoke(cli, ["report", "--pdf", "--config", str(_config(tmp_path))])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "install Debian's chromium" in lines[0]
    assert "Traceback" not in result.output and not (Path.cwd() / "steering.pdf").exists()


@pytest.mark.browser
@pytest.mark.skipif(NO_CHROMIUM, reason="needs Debian chromium (make chromium)")
def test_report_pdf_writes_the_pdf(tmp_path):
    out = tmp_path / "pack.pdf"
    config = _config(tmp_path)
    result = CliRunner().invoke(
        cli, ["report", "--pdf", "--lang", "nl", "--config", str(config), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"wrote .*pack\.pdf \(\d+ pages?, .*nl, printed in [\d.]+ s\)", result.output)
    pages = read_layout(out.read_bytes())
    assert pages[0].body.startswith("Stuurrapportage")
    assert all(p.body.strip() for p in pages) and overlaps(pages) == []
