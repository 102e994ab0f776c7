"""The canonical model: one schema for every tracker.

Connectors emit dict rows typed by the TypedDicts below (``WorkItemRow``, ``LinkRow``, ``SprintRow``,
``StatusChangeRow``: mypy checks their keys), which match the polars schemas key for key
(``tests/warehouse/test_model.py``); the warehouse turns a batch of them into one Arrow table per
kind (``frame``, which refuses a key the schema does not know) and loads it in a single
statement. Transforms read the same shapes back as polars frames, so this file is the contract
between all three.

Identity: ``item_id`` is ``"<source>:<native id>"``. The native id is the tracker's immutable id
(Jira issue id, Azure DevOps work item id), never the display key, which changes when an issue moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal, TypedDict

import polars as pl

Level = Literal["initiative", "epic", "feature", "story", "task", "bug", "impediment"]
LEVELS: Final = ("initiative", "epic", "feature", "story", "task", "bug", "impediment")
#: Levels from top (strategy) to bottom (work); used to walk "a path up to a goal".
HIERARCHY: Final = ("initiative", "epic", "feature", "story")

Category = Literal["todo", "in_progress", "done"]
CATEGORIES: Final = ("todo", "in_progress", "done")

#: Normalised link kinds. ``blocks`` is always stored blocker -> dependent (from_item blocks to_item).
#: Hierarchy is *not* a link row: it lives in ``work_items.parent_id`` (one concept, one place);
#: the ``all_links`` view adds it back as ``parent`` rows (parent -> child) for whoever wants edges.
LinkKind = Literal["blocks", "relates", "duplicates"]
LINK_KINDS: Final = ("blocks", "relates", "duplicates", "parent")

UTC_TS = pl.Datetime("us", "UTC")
Schema = dict[str, Any]  # column -> polars dtype

WORK_ITEM_SCHEMA: Final[Schema] = {
    "item_id": pl.String,  # "<source>:<native_id>", the join key everywhere
    "source": pl.String,
    "native_id": pl.String,  # immutable tracker id
    "key": pl.String,  # display key (ABC-123, or the ADO id)
    "url": pl.String,  # browse link back to the tracker
    "organisation": pl.String,
    "project": pl.String,
    "raw_type": pl.String,  # tracker issue / work item type name
    "level": pl.String,  # one of LEVELS
    "title": pl.String,
    "has_description": pl.Boolean,  # description or acceptance criteria present
    "raw_status": pl.String,
    "status_category": pl.String,  # one of CATEGORIES
    "team": pl.String,
    "assignee": pl.String,
    "priority": pl.String,  # raw priority name
    "priority_rank": pl.Int32,  # 1 = most important; None when the tracker has no priority
    "rank": pl.String,  # backlog order within a source, compares as text (LexoRank, padded StackRank)
    "estimate": pl.Float64,  # story points / effort
    "created": UTC_TS,
    "updated": UTC_TS,
    "resolved": UTC_TS,
    "due_date": pl.Date,  # target / due date
    "sprint_id": pl.String,  # "<source>:<sprint native id>" of the current (last) sprint
    "parent_id": pl.String,  # item_id of the parent (Jira parent / Epic Link, ADO Hierarchy-Reverse)
    "parent_key": pl.String,  # parent's display key when only that is known (Jira DC Epic Link);
    # the warehouse resolves it to parent_id within the source after each load
    "labels": pl.List(pl.String),
    "business_value": pl.Float64,
    "cost": pl.Float64,
    "time_criticality": pl.Float64,
    "risk_reduction": pl.Float64,
    "flagged": pl.Boolean,  # Jira "Flagged" / ADO "Blocked" field
    "is_deleted": pl.Boolean,  # set by reconciliation; transforms read live items only
}

LINK_SCHEMA: Final[Schema] = {
    "source": pl.String,  # source the link was read from
    "link_id": pl.String,  # unique within the source (Jira link id, or derived for ADO)
    "from_item": pl.String,  # item_id; for blocks: the blocker
    "to_item": pl.String,  # item_id; for blocks: the dependent
    # Cross-tracker links (Jira remote link, ADO Hyperlink/ArtifactLink, text pattern): the end in
    # the other tracker is null until resolved, and target_url holds its URL (or text reference).
    "target_url": pl.String,
    "kind": pl.String,  # blocks / relates / duplicates
    "raw_type": pl.String,  # tracker link type name as read
    "resolved": pl.Boolean,  # both ends are live items in the warehouse
}

#: Connectors emit one sprint row per (sprint, team it serves): an iteration shared by several
#: teams is several rows with the same sprint_id. The warehouse keeps ``sprints`` once per sprint
#: (``team`` = the first team listed) and the teams in ``sprint_teams``; ``Warehouse.frames()``
#: hands the analyses one row per (sprint, team) again, so per-sprint figures are per team sprint.
SPRINT_SCHEMA: Final[Schema] = {
    "sprint_id": pl.String,  # "<source>:<native id>"
    "source": pl.String,
    "native_id": pl.String,
    "name": pl.String,
    "team": pl.String,  # a team the sprint serves (null: unknown, filled from its items)
    "board": pl.String,  # Jira board id, ADO team name
    "state": pl.String,  # future / active / closed
    "start": UTC_TS,
    "end": UTC_TS,
    "complete": UTC_TS,
}

STATUS_CHANGE_SCHEMA: Final[Schema] = {
    "source": pl.String,
    "item_id": pl.String,
    "change_id": pl.String,  # unique per item (history id + item index)
    "at": UTC_TS,
    "field": pl.String,  # "status" or "flagged"
    "from_status": pl.String,
    "to_status": pl.String,
    "from_category": pl.String,
    "to_category": pl.String,
}

TEAM_SCHEMA: Final[Schema] = {"team": pl.String, "organisation": pl.String, "source": pl.String}
ORGANISATION_SCHEMA: Final[Schema] = {"organisation": pl.String, "description": pl.String}
SOURCE_SCHEMA: Final[Schema] = {
    "source": pl.String,
    "kind": pl.String,
    "organisation": pl.String,
    "base_url": pl.String,
}

SCHEMAS: Final[dict[str, Schema]] = {
    "work_items": WORK_ITEM_SCHEMA,
    "links": LINK_SCHEMA,
    "sprints": SPRINT_SCHEMA,
    "status_changes": STATUS_CHANGE_SCHEMA,
    "teams": TEAM_SCHEMA,
    "organisations": ORGANISATION_SCHEMA,
    "sources": SOURCE_SCHEMA,
}

Row = dict[str, Any]


# Rows as connectors emit them, one TypedDict per canonical table: same keys, same order and
# matching types as the schemas above (a test holds them together). Every key is given; a value
# may be None where the column is nullable.


class WorkItemRow(TypedDict):
    item_id: str
    source: str
    native_id: str
    key: str | None
    url: str | None
    organisation: str | None
    project: str | None
    raw_type: str | None
    level: str | None
    title: str | None
    has_description: bool | None
    raw_status: str | None
    status_category: str | None
    team: str | None
    assignee: str | None
    priority: str | None
    priority_rank: int | None
    rank: str | None
    estimate: float | None
    created: datetime | None
    updated: datetime | None
    resolved: datetime | None
    due_date: date | None
    sprint_id: str | None
    parent_id: str | None
    parent_key: str | None
    labels: list[str]
    business_value: float | None
    cost: float | None
    time_criticality: float | None
    risk_reduction: float | None
    flagged: bool | None
    is_deleted: bool


class LinkRow(TypedDict):
    source: str
    link_id: str
    from_item: str | None
    to_item: str | None
    target_url: str | None
    kind: str
    raw_type: str | None
    resolved: bool | None


class SprintRow(TypedDict):
    sprint_id: str
    source: str
    native_id: str
    name: str | None
    team: str | None
    board: str | None
    state: str | None
    start: datetime | None
    end: datetime | None
    complete: datetime | None


class StatusChangeRow(TypedDict):
    source: str
    item_id: str
    change_id: str
    at: datetime | None
    field: str
    from_status: str | None
    to_status: str | None
    from_category: str | None
    to_category: str | None


#: The row type of each canonical table a connector fills.
ROW_TYPES: Final[dict[str, type]] = {
    "work_items": WorkItemRow,
    "links": LinkRow,
    "sprints": SprintRow,
    "status_changes": StatusChangeRow,
}


def item_id(source: str, native_id: str | int) -> str:
    return f"{source}:{native_id}"


@dataclass
class Batch:
    """What a connector yields: canonical rows for a slice of items, plus readable problems.

    A batch carries the *complete* links and status history of each of its work items: the
    warehouse replaces exactly those, so a link removed in the tracker disappears and a history
    is never half-replaced.
    """

    work_items: list[WorkItemRow] = field(default_factory=list)
    links: list[LinkRow] = field(default_factory=list)
    sprints: list[SprintRow] = field(default_factory=list)
    status_changes: list[StatusChangeRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: item_ids whose history could not be read this time: their stored history is kept as is
    history_missing: list[str] = field(default_factory=list)
    #: native ids of items in scope that could not be read this time (the run moves no cursor
    #: past them, so the next run reads them again)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.work_items += other.work_items
        self.links += other.links
        self.sprints += other.sprints
        self.status_changes += other.status_changes
        self.problems += other.problems
        self.history_missing += other.history_missing
        self.skipped += other.skipped


class UnknownColumnError(ValueError):
    """Rows carry a key their canonical table does not have (a misspelt key would otherwise be
    dropped and its column left null without a word)."""


def frame(kind: str, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Rows -> a frame with the canonical schema. A missing key becomes null; a key the schema
    does not know raises ``UnknownColumnError`` naming it and the table (the keys of every row
    are checked: one set union per batch, a fraction of building the frame)."""
    schema = SCHEMAS[kind]
    if not rows:
        return pl.DataFrame(schema=schema)
    unknown = set().union(*rows).difference(schema)
    if unknown:
        names = ", ".join(repr(k) for k in sorted(unknown, key=str))
        raise UnknownColumnError(
            f"{kind} rows carry key(s) {names} that table {kind!r} does not have "
            f"(warehouse.model.SCHEMAS[{kind!r}]): a misspelt key, or a column without a migration"
        )
    return pl.DataFrame(rows, schema=schema, strict=False)


def empty(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[kind])
