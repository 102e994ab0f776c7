"""How a sentence stored as a catalogue key and parameters is said in the reader's language:
decision lines, changes and findings all store ``key`` + JSON ``params`` instead of prose, and
``sentence`` renders them (labels, lists, nested sentences, Babel numbers and days). Also who
acts, the roles every list names. Imports only the catalogue, so any report module may use it.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from pmolens.reports.i18n import add_labels, day, lang_of, number

Translate = Callable[[str], str]

add_labels(
    {
        "decision_role_Team PO": {"en": "Team PO", "nl": "PO van het team"},
        "decision_role_Chief PO": {"en": "Chief PO", "nl": "Chief PO"},
        "decision_role_SoS Master": {
            "en": "Scrum of Scrums Master",
            "nl": "Scrum of Scrums Master",
        },
        "decision_role_EAT": {"en": "Executive Action Team", "nl": "Executive Action Team"},
        "decision_role_PMO": {"en": "PMO", "nl": "PMO"},
    }
)

DASH = "–"
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _value(value: Any, t: Translate) -> str:
    """One parameter as text: a label in the reader's language, a list ("A, B and 2 more"), a
    number or an ISO day as the reader writes them (Babel, by ``t``'s language), or a dash.
    A plain function as ``t`` (no language) gives ISO days and Python's numbers: the English
    ``message`` columns are written that way."""
    lang = lang_of(t)
    if value is None:
        return DASH
    if isinstance(value, Mapping):
        if "list" in value:
            items = ", ".join(_value(v, t) for v in value.get("list") or [])
            more = int(value.get("more") or 0)
            if more <= 0:
                return items
            if lang is None:
                return f"{items} and {more} more"
            return t("list_more").format(items=items, n=number(more, lang, 0))
        if value.get("sentence"):  # a sentence inside a sentence (a list entry, a suffix)
            return sentence(str(value["sentence"]), value.get("params"), t)
        label, text = value.get("label"), value.get("text")
        if label:
            try:
                return t(str(label))
            except KeyError:
                pass
        return DASH if text is None else _value(str(text), t)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if lang is None else number(value, lang, 0)
    if isinstance(value, float):
        return f"{value:g}" if lang is None else number(value, lang, 2)
    if lang is not None and isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return day(date.fromisoformat(value), lang)
    return str(value)


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return DASH


def sentence(detail_key: str, params: str | Mapping[str, Any] | None, t: Translate) -> str:
    """The sentence ``detail_key`` with its parameters (a JSON object or a mapping), in the
    language of ``t`` (``reports.i18n.translator``)."""
    if isinstance(params, str):
        params = json.loads(params) if params else {}
    values = _Params({k: _value(v, t) for k, v in (params or {}).items()})
    return string.Formatter().vformat(t(detail_key), (), values)


def who_acts(role: str | None, t: Translate) -> str:
    """The acting role (``owner_role``: Team PO, Chief PO, SoS Master, EAT, PMO) as a reader says it."""
    if role is None:
        return DASH
    try:
        return t(f"decision_role_{role}")
    except KeyError:
        return role
