"""One label catalogue for every report text, in English and Dutch.

Shared labels live here; a section adds its own with ``add_labels`` in its module."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Literal

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

Lang = Literal["en", "nl"]
LANGS: tuple[Lang, ...] = ("en", "nl")
LOCALES: dict[Lang, str] = {"en": "en_GB", "nl": "nl_NL"}
DAY_FORMAT: dict[Lang, str] = {"en": "d MMM yyyy", "nl": "dd-MM-yyyy"}

CATALOGUE: dict[str, dict[str, str]] = {
    "report_title": {"en": "Steering report", "nl": "Stuurrapportage"},
    "generated": {"en": "Generated", "nl": "Gegenereerd"},
    "as_of": {"en": "Data as of", "nl": "Peildatum"},
    "scope": {"en": "Scope", "nl": "Scope"},
    "all_organisations": {
        "en": "All organisations in the chain",
        "nl": "Alle organisaties in de keten",
    },
    "freshness": {"en": "Data freshness per source", "nl": "Actualiteit per bron"},
    "source": {"en": "Source", "nl": "Bron"},
    "kind": {"en": "Tracker", "nl": "Tracker"},
    "organisation": {"en": "Organisation", "nl": "Organisatie"},
    "team": {"en": "Team", "nl": "Team"},
    "last_sync": {"en": "Last sync", "nl": "Laatste synchronisatie"},
    "outcome": {"en": "Outcome", "nl": "Resultaat"},
    "outcome_success": {"en": "complete", "nl": "volledig"},
    "outcome_partial": {"en": "complete, with problems", "nl": "volledig, met meldingen"},
    "outcome_failed": {"en": "failed", "nl": "mislukt"},
    "outcome_running": {"en": "running", "nl": "bezig"},
    "outcome_abandoned": {"en": "abandoned", "nl": "afgebroken"},
    "items": {"en": "Items", "nl": "Items"},
    "never": {"en": "never", "nl": "nooit"},
    "summary": {"en": "Executive summary", "nl": "Managementsamenvatting"},
    "organisations": {"en": "Organisations", "nl": "Organisaties"},
    "teams": {"en": "Teams", "nl": "Teams"},
    "epics": {"en": "Epics", "nl": "Epics"},
    "open_items": {"en": "Open items", "nl": "Openstaande items"},
    "done_items": {"en": "Done items", "nl": "Afgeronde items"},
    "progress": {"en": "Progress", "nl": "Voortgang"},
    "progress_count": {"en": "Progress (items)", "nl": "Voortgang (items)"},
    "progress_estimate": {"en": "Progress (estimate)", "nl": "Voortgang (schatting)"},
    "portfolio": {"en": "Portfolio overview", "nl": "Portfolio-overzicht"},
    "portfolio_question": {
        "en": "How far along is each organisation and team with its epics?",
        "nl": "Hoe ver is elke organisatie en elk team met zijn epics?",
    },
    "hierarchy_question": {
        "en": "Where does the work sit in the hierarchy (initiative, epic, feature)?",
        "nl": "Waar zit het werk in de hiërarchie (initiatief, epic, feature)?",
    },
    "epic_table": {"en": "Epics with progress", "nl": "Epics met voortgang"},
    "epic": {"en": "Epic", "nl": "Epic"},
    "title": {"en": "Title", "nl": "Titel"},
    "owner": {"en": "Owner", "nl": "Eigenaar"},
    "status": {"en": "Status", "nl": "Status"},
    "due": {"en": "Target date", "nl": "Streefdatum"},
    "unassigned": {"en": "(unassigned)", "nl": "(niet toegewezen)"},
    "no_team": {"en": "(no team)", "nl": "(geen team)"},
    "todo": {"en": "To do", "nl": "Te doen"},
    "in_progress": {"en": "In progress", "nl": "Onderhanden"},
    "done": {"en": "Done", "nl": "Gereed"},
    "more_rows": {"en": "{n} more rows in the export", "nl": "nog {n} rijen in de export"},
    "list_more": {"en": "{items} and {n} more", "nl": "{items} en nog {n}"},
    "empty": {"en": "Nothing to show.", "nl": "Niets te tonen."},
    "trend_later": {
        "en": "The trend appears from the second sync on; so far there is one ({when}).",
        "nl": "De trend verschijnt vanaf de tweede synchronisatie; tot nu toe is er één ({when}).",
    },
    "trend_none": {
        "en": "The trend appears from the second sync on; there is no sync yet.",
        "nl": "De trend verschijnt vanaf de tweede synchronisatie; er is nog geen synchronisatie.",
    },
    # the red-line headline (docs/dependencies.md, "Timing and red lines"): CLI, API, report
    "red_lines": {"en": "Red lines", "nl": "Rode lijnen"},
    "red_line_conflict": {"en": "Conflicts", "nl": "Conflicten"},
    "red_line_unscheduled_blocker": {
        "en": "Blocker not planned",
        "nl": "Blokkerend item niet gepland",
    },
    "red_line_at_risk": {
        "en": "At risk (same sprint or end date)",
        "nl": "Risico (zelfde sprint of einddatum)",
    },
    "red_line_items": {
        "en": "Waiting items with a red line",
        "nl": "Wachtende items met een rode lijn",
    },
    "red_lines_of": {"en": "{n} of {total} red lines", "nl": "{n} van {total} rode lijnen"},
}


def add_labels(labels: dict[str, dict[str, str]]) -> None:
    """A report section brings its own labels (both languages); keys must not clash."""
    for key, entry in labels.items():
        if set(entry) != set(LANGS):
            raise ValueError(f"label {key!r} needs exactly {LANGS}, has {sorted(entry)}")
        if key in CATALOGUE and CATALOGUE[key] != entry:
            raise ValueError(f"label {key!r} is already defined differently")
        CATALOGUE[key] = entry


class Translator:
    """``t(key)``: the label in one language. It carries that language (``t.lang``) so that
    what formats a sentence's numbers and dates (``decision_text.sentence``) needs only ``t``."""

    def __init__(self, lang: Lang) -> None:
        if lang not in LANGS:
            raise ValueError(f"language must be one of {LANGS}, not {lang!r}")
        self.lang: Lang = lang

    def __call__(self, key: str) -> str:
        entry = CATALOGUE.get(key)
        if entry is None:
            raise KeyError(f"no label {key!r} in reports/i18n.py")
        return entry[self.lang]


def translator(lang: Lang) -> Callable[[str], str]:
    return Translator(lang)


def lang_of(t: Callable[[str], str]) -> Lang | None:
    """The language of a translator (None for a plain function, which then gets ISO dates and
    Python's number format: the English ``message`` of a finding is written that way)."""
    return getattr(t, "lang", None)


# ------------------------------------------------------------------ numbers and dates

FORMAT_CACHE = 1 << 16
"""Formatted values kept per (value, language): Babel costs ~20 µs a call, and a page or report
writes the same few thousand numbers and days again and again."""


@lru_cache(maxsize=FORMAT_CACHE)
def number(value: float | int | None, lang: Lang, decimals: int = 1) -> str:
    """A number as a reader of ``lang`` writes it (nl: 1.082 and 2,5; en: 1,082 and 2.5);
    at most ``decimals`` decimals, none for whole numbers. None is a dash."""
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=LOCALES[lang])


@lru_cache(maxsize=FORMAT_CACHE)
def percent(share: float | None, lang: Lang) -> str:
    """A share (0..1) as a whole percentage (nl: 45%; en: 45%)."""
    return "–" if share is None else format_percent(share, locale=LOCALES[lang])


@lru_cache(maxsize=FORMAT_CACHE)
def day(value: date | datetime | None, lang: Lang) -> str:
    """A day (nl: 14-12-2026; en: 14 Dec 2026). None is a dash."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, format=DAY_FORMAT[lang], locale=LOCALES[lang])


@lru_cache(maxsize=FORMAT_CACHE)
def short_day(value: date, lang: Lang, with_year: bool = False) -> str:
    """A day on a time axis (nl: 14 dec.; en: 14 Dec), with the year when asked."""
    pattern = "d MMM" + (" yyyy" if with_year else "")
    return format_date(value, format=pattern, locale=LOCALES[lang])


def moment(value: datetime | None, lang: Lang, seconds: bool = False) -> str:
    """A moment in UTC, to the minute (nl: 14-12-2026 09:30 UTC), or to the second (a report's
    "data as of", where 23:59:59 and the next day differ)."""
    if value is None:
        return "–"
    clock = "HH:mm:ss" if seconds else "HH:mm"
    return format_datetime(
        value, format=f"{DAY_FORMAT[lang]} {clock} 'UTC'", tzinfo=UTC, locale=LOCALES[lang]
    )
