"""The steering report as a PDF: the HTML report printed by headless Chromium.

Printing the very HTML people open keeps one layout (the template's print CSS) for the browser's
own print and for the PDF. Chromium is Debian's ``chromium`` driven by Playwright; nothing is
downloaded, and the page gets no network (only the report's own file). One Chromium runs at a
time per process: it is the heaviest thing pmolens starts.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pmolens.reports.i18n import Lang, add_labels, translator
from pmolens.reports.steering import build_report
from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse

add_labels(
    {
        "pdf_no_chromium": {
            "en": "No Chromium to print the PDF with: install Debian's chromium "
            "(apt-get install chromium, or make chromium).",
            "nl": "Geen Chromium om de pdf mee te maken: installeer de chromium van Debian "
            "(apt-get install chromium, of make chromium).",
        },
        "pdf_no_playwright": {
            "en": "The PDF needs the Python package playwright: pip install 'pmolens[pdf]'.",
            "nl": "Voor de pdf is het Python-pakket playwright nodig: pip install 'pmolens[pdf]'.",
        },
        "pdf_busy": {
            "en": "Another PDF is being printed; try again in a minute.",
            "nl": "Er wordt al een pdf gemaakt; probeer het over een minuut opnieuw.",
        },
        "pdf_failed": {
            "en": "Chromium could not print the report: {reason}",
            "nl": "Chromium kon de rapportage niet afdrukken: {reason}",
        },
    }
)

#: the print width of A4 landscape less the template's 12 mm side margins, in CSS pixels: the
#: page is laid out at the width it is printed at, so nothing is scaled
VIEWPORT = {"width": round((297 - 2 * 12) * 96 / 25.4), "height": 900}
#: how long to wait for the one Chromium another request is using, and for the charts to draw
WAIT_S = 120.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # no name resolves: the report is self-contained, so a page asking the network gets nothing
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
FOOTER = (
    '<div style="font-family: Helvetica, Arial, sans-serif; font-size: 8pt; color: #5b6578; '
    'width: 100%; margin: 0 12mm; display: flex; justify-content: space-between;">'
    '<span>{footer}</span><span><span class="pageNumber"></span> / '
    '<span class="totalPages"></span></span></div>'
)

NO_CSS_FOOTER = "@page { @bottom-left { content: none; } @bottom-right { content: none; } }"

_ONE_CHROMIUM = threading.BoundedSemaphore(1)


class PdfUnavailable(RuntimeError):
    """The PDF cannot be made now (busy, or Chromium failed): one sentence to show."""


class NoChromium(PdfUnavailable):
    """The PDF cannot be made on this machine: no chromium, or no playwright package."""


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    charts: int
    seconds: float

    @property
    def pages(self) -> int:
        return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", self.pdf))


def chromium_path() -> str | None:
    return shutil.which("chromium")


def print_html(page_html: str, lang: Lang = "en") -> Printed:
    """Print a steering report (the HTML string, plotly inlined) to PDF bytes.

    Raises ``PdfUnavailable`` with a sentence in ``lang`` when it cannot."""
    t = translator(lang)
    executable = chromium_path()
    if executable is None:
        raise NoChromium(t("pdf_no_chromium"))
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NoChromium(t("pdf_no_playwright")) from None
    if not _ONE_CHROMIUM.acquire(timeout=WAIT_S):
        raise PdfUnavailable(t("pdf_busy"))
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pmolens-pdf-") as tmp:
            source = Path(tmp) / "steering.html"
            source.write_text(page_html, encoding="utf-8")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                    page.set_default_timeout(WAIT_S * 1000)  # a big report on a busy machine
                    # print media from the start: the charts are drawn once, at the print size
                    page.emulate_media(media="print")
                    page.goto(source.as_uri(), wait_until="load")
                    page.wait_for_function(
                        "window.__pmolensChartsReady === true", timeout=WAIT_S * 1000
                    )
                    charts = int(page.evaluate("window.pmolensPrintLayout()"))
                    # the footer below replaces the print CSS's own (the browser print's)
                    page.add_style_tag(content=NO_CSS_FOOTER)
                    footer = page.evaluate(
                        "document.querySelector('meta[name=pmolens-footer]').content"
                    )
                    pdf = page.pdf(
                        prefer_css_page_size=True,
                        print_background=True,
                        display_header_footer=True,
                        header_template="<span></span>",
                        footer_template=FOOTER.format(footer=html.escape(str(footer))),
                        tagged=True,
                    )
                finally:
                    browser.close()
    except PlaywrightError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PdfUnavailable(t("pdf_failed").format(reason=reason)) from None
    finally:
        _ONE_CHROMIUM.release()
    return Printed(pdf, charts, time.monotonic() - started)


def build_pdf(
    warehouse: Warehouse,
    settings: Settings,
    *,
    lang: Lang = "en",
    organisation: str | None = None,
    as_of: datetime | None = None,
) -> Printed:
    """The steering report (``reports.steering.build_report``, plotly inlined) as a PDF."""
    page_html = build_report(
        warehouse,
        settings,
        lang=lang,
        organisation=organisation,
        as_of=as_of,
        plotly="inline",
    )
    return print_html(page_html, lang)
