"""The Dutch report speaks Dutch (issue 14, point 1): rendered on a small simulated chain (three
organisations, three trackers), it holds no English word outside a small allow-list and no number
or date written the English way; the English report holds no Dutch-formatted number. Tracker data
(titles, names, keys, statuses, team, organisation and sprint names) is left out of the check:
every word of it is taken from the warehouse.

"English word" = a word of the English catalogue (reports/i18n.py) that the Dutch catalogue never
uses, or a common English word: so any English sentence that reaches the Dutch report (a finding,
a grade reason, a forecast note, a label) is caught without a dictionary.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from pmolens.reports import finding_text  # noqa: F401  (the finding sentences)
from pmolens.reports.decision_text import sentence
from pmolens.reports.i18n import CATALOGUE
from pmolens.reports.steering import build_report
from tests.reports.conftest import Chain

WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’]*")
#: common English words a stray sentence would bring (besides the catalogue's own)
COMMON_EN = {
    "the", "and", "of", "with", "without", "which", "while", "where", "when", "what", "who",
    "has", "have", "been", "is", "are", "was", "were", "will", "would", "should", "can",
    "could", "not", "no", "yes", "more", "than", "before", "after", "its", "their", "this",
    "that", "these", "those", "from", "into", "onto", "other", "others", "one", "two", "all",
    "any", "each", "every", "only", "also", "but", "or", "nor", "by", "on", "at", "to", "for",
    "as", "some", "none", "days", "day", "items", "item", "sprints", "planned", "finish",
    "finished", "waits", "wait", "blocker", "blocks", "open", "close", "done", "left", "work",
    "team", "teams", "epic", "epics"
}  # fmt: skip
#: loan words Dutch agile practice uses as they are (docs/glossary.md)
ALLOW = {
    "p50", "p85", "p95", "wsjf", "kpi", "scrum", "scrums", "master", "po", "pmo", "epic",
    "epics", "feature", "features", "story", "stories", "backlog", "backlogs", "sprint",
    "sprints", "team", "teams", "item", "items", "status", "score", "wip", "flow", "velocity",
    "ready", "refinement", "trend", "definition", "of", "done", "impediment", "impediments",
    "executive", "action", "chief", "top", "extra",
}  # fmt: skip
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
EN_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
EN_DECIMAL = re.compile(r"(?<![\d.,])\d+\.\d{1,2}(?![\d.])")
NL_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?![\d.])")
NL_DECIMAL = re.compile(r"(?<![\d.,])\d+,\d{1,2}(?![\d,])")


@pytest.fixture(scope="module")
def chain(demo_chain: Chain) -> Chain:
    return demo_chain


@pytest.fixture(scope="module")
def pages(chain: Chain) -> dict[str, str]:
    return {
        lang: build_report(chain.warehouse, chain.settings, lang=lang, plotly="cdn")  # type: ignore[arg-type]
        for lang in ("nl", "en")
    }


def _words(text: str) -> set[str]:
    return {w.lower().strip("'’") for w in WORD.findall(text)}


@pytest.fixture(scope="module")
def titles(chain: Chain) -> list[str]:
    """Item titles and sprint names (they may hold any number), longest first."""
    wh = chain.warehouse
    names = wh.query("SELECT title FROM work_items")["title"].drop_nulls().to_list()
    names += wh.query("SELECT name FROM sprints")["name"].drop_nulls().to_list()
    return sorted({n for n in names if re.search(r"\d", n)}, key=len, reverse=True)


@pytest.fixture(scope="module")
def data_words(chain: Chain) -> set[str]:
    """Every word of the tracker data the report may quote."""
    wh = chain.warehouse
    texts: list[str] = []
    for sql in (
        "SELECT title, raw_status, raw_type, assignee, team, organisation, project, key, source "
        "FROM work_items",
        "SELECT * FROM sprints",
        "SELECT * FROM teams",
        "SELECT * FROM organisations",
        "SELECT source, kind, organisation FROM sources",
    ):
        for row in wh.query(sql).iter_rows():
            texts.extend(str(v) for v in row if v is not None)
    return _words(" ".join(texts))


def _visible(page: str) -> str:
    """The page's text a reader sees: HTML text, and the chart texts (names, titles, labels,
    hover text, annotations) from the figure specs."""
    specs = re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S)
    body = re.sub(r"<script\b.*?</script>", " ", page, flags=re.S)
    body = re.sub(r"<style\b.*?</style>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    parts = [html.unescape(body)]
    for spec in specs:
        parts.extend(_chart_texts(json.loads(spec.replace("<\\/", "</"))))
    return "\n".join(parts)


def _chart_texts(node: object, key: str = "") -> list[str]:
    shown = {"name", "text", "hovertext", "title", "labels", "ticktext", "y", "x"}
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("hovertemplate", "texttemplate"):
                out.append(re.sub(r"%\{[^}]*\}", " ", str(v)))
            else:
                out.extend(_chart_texts(v, k))
    elif isinstance(node, list):
        for v in node:
            out.extend(_chart_texts(v, key))
    elif isinstance(node, str) and key in shown:
        if key in ("x", "y") and not re.search(r"[A-Za-z]", node):
            return out  # data values (dates, numbers) drawn by plotly, not prose
        out.append(html.unescape(re.sub(r"<[^>]+>", " ", node)))
    return out


def _english_words() -> set[str]:
    en = _words(" ".join(entry["en"] for entry in CATALOGUE.values()))
    nl = _words(" ".join(entry["nl"] for entry in CATALOGUE.values()))
    return (en | COMMON_EN) - nl - ALLOW


def test_finding_templates_reproduce_the_english_message(chain: Chain):
    """Each rule's key + parameters say exactly its English ``message`` (rendered without a
    language: ISO days, Python numbers), so the Dutch sentence carries the same facts."""
    findings = chain.warehouse.query("SELECT * FROM result_findings")
    keyed = findings.filter(findings["message_key"].is_not_null())
    assert keyed.height > 20 and keyed["rule"].n_unique() >= 5

    def plain(key: str) -> str:
        return CATALOGUE[key]["en"]

    for row in keyed.iter_rows(named=True):
        assert sentence(row["message_key"], row["message_params"], plain) == row["message"], row


def test_dutch_report_has_no_english_words_or_numbers(pages, data_words, titles):
    text = _visible(pages["nl"])
    english = _english_words()
    leaked = sorted((_words(text) - data_words) & english)
    assert not leaked, leaked
    lines = [line for line in text.splitlines() if line.strip()]
    for pattern, what in (
        (EN_THOUSANDS, "English thousands separator"),
        (EN_DECIMAL, "English decimal point"),
        (ISO_DAY, "ISO date"),
    ):
        hits = [line.strip()[:160] for line in lines if pattern.search(_without_data(line, titles))]
        assert not hits, (what, hits[:5])


def test_english_report_has_no_dutch_numbers(pages, data_words, titles):
    text = _visible(pages["en"])
    lines = [line for line in text.splitlines() if line.strip()]
    for pattern, what in (
        (NL_THOUSANDS, "Dutch thousands separator"),
        (NL_DECIMAL, "Dutch decimal comma"),
        (ISO_DAY, "ISO date"),
    ):
        hits = [line.strip()[:160] for line in lines if pattern.search(_without_data(line, titles))]
        assert not hits, (what, hits[:5])


def _without_data(line: str, titles: list[str]) -> str:
    """A line without item titles, sprint names and item keys (ABC-12), which may hold any
    digits."""
    for title in titles:
        if title in line:
            line = line.replace(title, " ")
    line = re.sub(r"'[^']*'", " ", line)
    return re.sub(r"\b[A-Z][A-Z0-9]*-\d+\b", " ", line)
