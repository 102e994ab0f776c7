"""Mapping pieces every connector shares: timestamps, numbers, level names and link rows.

``connectors.base`` is the connector protocol; this module holds the pure helpers the trackers'
payload mappings have in common, so a value means the same whichever tracker sent it. What is
tracker-specific (Jira's epoch timestamps, each tracker's own type names and link phrases) stays
in the tracker's module as an addition to what is here.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pmolens.warehouse.model import LinkRow

#: Work item type name (lower case) -> level: the names both trackers ship with the same meaning.
#: Each connector's ``DEFAULT_LEVELS`` is this table plus its tracker's own names (Jira's
#: Theme / Spike / Sub-task and localised names, Azure DevOps' Product Backlog Item / Issue):
#: a name one tracker uses for another level (ADO's "Issue" is an impediment, Jira's is generic)
#: must not leak into the other.
COMMON_LEVELS = {
    "epic": "epic",
    "feature": "feature",
    "user story": "story",
    "task": "task",
    "bug": "bug",
    "impediment": "impediment",
}

#: Phrases (regular expressions) in a link's text that say which way a dependency runs, shared by
#: the trackers; a tracker adds its own words (``phrases``).
BLOCKED_BY_PHRASES = ("blocked by", "depends on", "waits? (on|for)", "afhankelijk van")
BLOCKS_PHRASES = (r"\bblocks\b", "is depended on", "blokkeert")

_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
_FRACTION = re.compile(r"(\.\d{6})\d+")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while answers are decoded and mapped into rows.

    Why: a page of 1,000 issues becomes ~10^5 new dicts and lists that live on until the page is
    staged; with the collector running, each allocation burst sets off collections that walk
    them again and again (a 20,000-issue Data Center sync: ~0.9 s of ~3 s CPU in collections;
    ~0.4 s with decoding and mapping paused, measured). Decoded JSON and row dicts hold no
    reference cycles, so nothing waits for the collector meanwhile; it resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def phrases(*words: str) -> re.Pattern[str]:
    """One case-insensitive pattern that matches any of ``words``."""
    return re.compile("|".join(words), re.I)


def parse_time(value: Any, *, epoch: bool = False) -> datetime | None:
    """A tracker timestamp -> aware UTC datetime; None for an empty value.

    Text is ISO 8601 with 'Z', '+02:00' or Jira's '+0200' offsets and any number of fraction
    digits (Azure DevOps sends 7); a datetime is taken as it is (naive = UTC). Numbers are epoch
    seconds or milliseconds only where the tracker sends them (``epoch``, Jira); anything else is
    a TypeError, so the mapping reports the field instead of storing a wrong time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif epoch and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    elif isinstance(value, str):
        try:  # Python 3.11 reads 'Z', '+0200' and 7 fraction digits itself: the common case
            parsed = datetime.fromisoformat(value)
        except ValueError:
            text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00"))
            parsed = datetime.fromisoformat(_OFFSET.sub(r"\1:\2", text))
    else:
        raise TypeError(f"expected a date-time string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def number(value: Any) -> float | None:
    """A numeric field -> float; None when empty. A select-list value ({"value": x}) is read by
    its value; a yes/no value is not a number (TypeError), nor is text that does not parse."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        raise TypeError("a yes/no value is not a number")
    return float(value)


def link_row(
    source: str,
    link_id: str,
    kind: str,
    from_item: str | None,
    to_item: str | None,
    raw_type: str | None,
    target_url: str | None = None,
) -> LinkRow:
    """One canonical link row; ``resolved`` is left to the warehouse (cross-tracker links)."""
    return {
        "source": source,
        "link_id": link_id,
        "from_item": from_item,
        "to_item": to_item,
        "target_url": target_url,
        "kind": kind,
        "raw_type": raw_type,
        "resolved": None,
    }


def open_link(
    source: str,
    link_id: str,
    me: str,
    url: str,
    raw_type: str,
    *,
    blocked_by: bool = False,
    blocks: bool = False,
) -> LinkRow:
    """A link to an item outside the source (another tracker's URL): the far end stays open
    (null) for the warehouse to resolve. ``blocked_by`` (checked first): I depend on it;
    ``blocks``: it depends on me; neither: relates."""
    if blocked_by:
        return link_row(source, link_id, "blocks", None, me, raw_type, url)
    if blocks:
        return link_row(source, link_id, "blocks", me, None, raw_type, url)
    return link_row(source, link_id, "relates", me, None, raw_type, url)
