"""One label catalogue for every report text, in English and Dutch.

Shared labels live here; a section adds its own with ``add_labels`` in its module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Lang = Literal["en", "nl"]
LANGS: tuple[Lang, ...] = ("en", "nl")

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
    "more_rows": {"en": "more rows in the export", "nl": "meer rijen in de export"},
    "empty": {"en": "Nothing to show.", "nl": "Niets te tonen."},
    # the red-line headline (docs/dependencies.md, "Timing and red lines"): CLI, API, report
    "red_lines": {"en": "Red lines", "nl": "Rode lijnen"},
    "red_line_conflict": {"en": "Conflicts", "nl": "Conflicten"},
    "red_line_unscheduled_blocker": {
        "en": "Blocker not planned",
        "nl": "Blokkeerder niet gepland",
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


def translator(lang: Lang) -> Callable[[str], str]:
    if lang not in LANGS:
        raise ValueError(f"language must be one of {LANGS}, not {lang!r}")

    def t(key: str) -> str:
        entry = CATALOGUE.get(key)
        if entry is None:
            raise KeyError(f"no label {key!r} in reports/i18n.py")
        return entry[lang]

    return t
