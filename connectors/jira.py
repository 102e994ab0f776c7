"""Jira Cloud and Jira Data Center -> canonical batches.

Cloud (REST v3): ids come from ``POST /rest/api/3/search/jql`` (ids only, 5000 a page, ordered by
created so pages never shift); issues from ``POST /rest/api/3/issue/bulkfetch`` and full status
history from ``POST /rest/api/3/changelog/bulkfetch``, 100 issues a call, many calls in flight.
(``expand=changelog`` on search truncates at 100 entries; the old ``/rest/api/3/search`` is gone.)
A Cloud source must name its scope (``jql``): Jira Cloud refuses unbounded searches.

Data Center (REST v2): ``GET /rest/api/2/search`` with ``startAt``: after the first page the total
is known, so the remaining pages go out concurrently. ``expand=changelog`` is complete on DC;
a history whose ``total`` exceeds what came back is completed from ``/issue/{id}?expand=changelog``.

Validate before acting: every answer is decoded into its shape (``connectors.jira_shapes``); one
that does not fit is asked for again and then fails the run with ``MalformedAnswer`` naming the
endpoint, before anything of it is used. Concurrent calls are awaited together (``_all``): when
one fails the others are cancelled *and* awaited, so no task is ever left running or unretrieved.

Levels (which canonical level an issue type is), first match wins:

1. the source's ``levels`` config, by type name (or ``untranslatedName``): an override;
2. a name rule (``DEFAULT_LEVELS``, tried on ``untranslatedName`` first, then on the name) when it
   agrees with the type's Jira hierarchy level (``HIERARCHY_FITS``), or when Jira gives no level;
3. Jira's own hierarchy (``fields.issuetype`` of the issue, else the ``/issuetype`` catalogue read
   once per run, by id then name): ``subtask = true`` or ``hierarchyLevel`` -1 -> task, 1 -> epic,
   2 and above -> initiative, 0 -> story *with a problem line* (a standard type of unknown kind);
4. no hierarchy information and no name rule -> story *with a problem line*.

Status categories (todo / in_progress / done), first match wins:

1. the source's ``status_categories`` config, by status name: an override;
2. Jira's status catalogue (``/status``), by name;
3. the payload's own ``statusCategory`` (an issue's current status carries one; it is remembered
   by name for the run, so history entries naming that status get it too);
4. a name heuristic (``guess_category``: done-like, todo-like, else in_progress) *with a problem
   line* per occurrence.

Problem lines that can repeat (types, statuses, story points) carry no item key, so the sync run
shows each once with its count.

Mapping a raw issue to canonical rows is pure (``map_issue``, ``map_histories``,
``map_remote_links``) and tested on payloads shaped like Atlassian's docs.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pmolens.connectors.base import guess_category
from pmolens.connectors.http import TrackerClient, TrackerError
from pmolens.connectors.jira_shapes import (
    ChangelogPage,
    DcIdsPage,
    DcSearchPage,
    IdsPage,
    IssuesPage,
    IssueTypeList,
    IssueWithChangelog,
    Myself,
    RemoteLinkList,
    SprintPage,
    StatusList,
)
from pmolens.connectors.mapping import (
    BLOCKED_BY_PHRASES,
    BLOCKS_PHRASES,
    COMMON_LEVELS,
    gc_paused,
    link_row,
    open_link,
    phrases,
)
from pmolens.connectors.mapping import number as _number
from pmolens.connectors.mapping import parse_time as _parse_time
from pmolens.warehouse.config import SourceConfig
from pmolens.warehouse.model import Batch, LinkRow, SprintRow, StatusChangeRow, WorkItemRow, item_id

#: Issue type name (lower case) -> level: the name rules, after the source's own ``levels``.
#: The shared names plus Jira's own (its standard types and the localised names it ships).
DEFAULT_LEVELS = {
    **COMMON_LEVELS,
    "initiative": "initiative",
    "theme": "initiative",
    "story": "story",
    "improvement": "story",
    "spike": "story",
    "new feature": "story",
    "sub-task": "task",
    "subtask": "task",
    "defect": "bug",
    # localised names Jira ships (only where the name cannot mean another level)
    "taak": "task",  # Dutch
    "subtaak": "task",
    "verhaal": "story",
    "fout": "bug",
    "aufgabe": "task",  # German
    "unteraufgabe": "task",
    "fehler": "bug",
    "geschichte": "story",
    "子任务": "task",  # Chinese
    "任务": "task",
    "缺陷": "bug",
    "故事": "story",
    "tâche": "task",  # French
    "sous-tâche": "task",
    "bogue": "bug",
}
#: Jira hierarchy level -> the name-rule levels that agree with it (2 and above: ``ABOVE_EPIC``).
HIERARCHY_FITS: dict[int, frozenset[str]] = {
    -1: frozenset({"task", "bug"}),
    0: frozenset({"story", "task", "bug", "impediment", "feature"}),
    1: frozenset({"epic", "feature"}),
}
ABOVE_EPIC = frozenset({"initiative"})
JIRA_CATEGORY = {"new": "todo", "indeterminate": "in_progress", "done": "done", "undefined": "todo"}
BASE_FIELDS = [
    "summary",
    "issuetype",
    "status",
    "priority",
    "assignee",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "labels",
    "components",
    "project",
    "parent",
    "issuelinks",
    "description",
]
ID_PAGE = 5000  # search/jql allows 5000 a page when only ids are asked for
ISSUE_CHUNK = 100  # issue/bulkfetch takes up to 100 issues
BATCH_ITEMS = 1000  # items per yielded Batch
DC_ID_PAGE = 1000  # Data Center search pages are capped at 1000 (jira.search.views.max.limit)
RANGE_IDS = 4000  # ids aimed at per id range of a Cloud listing: one page each, with room
_ORDER_BY = re.compile(r"(?:^|\s+)order\s+by\s+.*$", re.I | re.S)


def _hierarchy(issue_type: dict[str, Any]) -> int | None:
    """Jira's level of a type: -1 sub-task, 0 standard, 1 epic, 2+ above; None when not given."""
    if issue_type.get("subtask") is True:
        return -1
    level = issue_type.get("hierarchyLevel")
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    return None


@dataclass(frozen=True)
class JiraContext:
    """Everything the pure mapping needs, derived once per run from the config and catalogues.

    ``learned`` is the one thing that grows during a run: status categories seen on payloads.
    """

    source: str
    organisation: str
    base_url: str
    cloud: bool
    config: SourceConfig
    status_categories: dict[str, str] = field(default_factory=dict)  # status name (lower) -> cat
    issue_types: dict[str, dict[str, Any]] = field(default_factory=dict)  # "id:x" / "name:y"
    learned: dict[str, str] = field(default_factory=dict)  # status name (lower) -> cat, payloads

    @classmethod
    def from_config(
        cls,
        config: SourceConfig,
        statuses: dict[str, str] | None = None,
        issue_types: Iterable[dict[str, Any]] = (),
    ) -> JiraContext:
        merged = dict(statuses or {})
        merged.update({k.lower(): v for k, v in config.status_categories.items()})
        types: dict[str, dict[str, Any]] = {}
        for entry in issue_types:
            if entry.get("id") is not None:
                types.setdefault(f"id:{entry['id']}", entry)
            for name in (entry.get("name"), entry.get("untranslatedName")):
                if name:
                    types.setdefault(f"name:{str(name).lower()}", entry)
        return cls(
            source=config.name,
            organisation=config.organisation,
            base_url=config.base_url,
            cloud=config.kind == "jira_cloud",
            config=config,
            status_categories=merged,
            issue_types=types,
        )

    def level_of(self, issue_type: Any) -> tuple[str, str | None]:
        """(level, problem or None) for an issue's ``fields.issuetype``; see the module doc."""
        raw = issue_type if isinstance(issue_type, dict) else {"name": _name(issue_type)}
        name = _name(raw.get("name")) or "Story"
        known: dict[str, Any] = {}
        if raw.get("id") is not None:
            known = self.issue_types.get(f"id:{raw['id']}") or {}
        known = known or self.issue_types.get(f"name:{name.lower()}") or {}
        untranslated = _name(raw.get("untranslatedName")) or _name(known.get("untranslatedName"))
        hierarchy = _hierarchy(raw)
        if hierarchy is None:
            hierarchy = _hierarchy(known)
        for candidate in (name, untranslated):  # 1. the source's levels: an override
            for configured, level in self.config.levels.items():
                if candidate and configured.lower() == candidate.lower():
                    return level, None
        fits = (
            None
            if hierarchy is None
            else HIERARCHY_FITS.get(hierarchy, ABOVE_EPIC if hierarchy > 1 else frozenset())
        )
        for candidate in (untranslated, name):  # 2. name rules that agree with the hierarchy
            ruled = DEFAULT_LEVELS.get(" ".join(candidate.lower().split())) if candidate else None
            if ruled and (fits is None or ruled in fits):
                return ruled, None
        if hierarchy is None:  # 4. nothing to go by
            return "story", (
                f"issue type {name!r} has no level from Jira (hierarchyLevel missing) and no "
                f"name rule; stored as story - map it under levels"
            )
        if hierarchy < 0:  # 3. Jira's hierarchy
            return "task", None
        if hierarchy == 1:
            return "epic", None
        if hierarchy > 1:
            return "initiative", None
        return "story", (
            f"issue type {name!r} is a standard-level Jira type (hierarchyLevel 0) of unknown "
            f"kind; stored as story - map it under levels"
        )

    def learn(self, status: Any) -> None:
        """Remember the category an issue's current status carries, for history entries."""
        if not isinstance(status, dict):
            return
        name = _name(status.get("name"))
        category = status.get("statusCategory")
        key = category.get("key") if isinstance(category, dict) else None
        if name and key in JIRA_CATEGORY:
            self.learned.setdefault(name.lower(), JIRA_CATEGORY[str(key)])

    def resolve_status(
        self, status: str | None, payload_key: Any = None
    ) -> tuple[str | None, str | None]:
        """(category, problem or None) for a status name; see the module doc for the order."""
        if status is None:
            return None, None
        name = status.lower()
        known = self.status_categories.get(name)
        if known:
            return known, None
        if payload_key in JIRA_CATEGORY:
            return JIRA_CATEGORY[str(payload_key)], None
        learned = self.learned.get(name)
        if learned:
            return learned, None
        guess = guess_category(status)
        return guess, (
            f"status {status!r} is not in Jira's status list; counted as {guess} by its name "
            f"- set status_categories to be sure"
        )

    def link_kind(self, type_name: str) -> tuple[str, bool] | None:
        """(kind, outward_is_blocker) for a link type name, or None when unknown."""
        types = self.config.link_types
        name = type_name.lower()
        if name in (t.lower() for t in types.blocks):
            return "blocks", False
        if name in (t.lower() for t in types.depends):
            return "blocks", True
        if name in (t.lower() for t in types.duplicates):
            return "duplicates", False
        if name in (t.lower() for t in types.relates):
            return "relates", False
        return None


# --------------------------------------------------------------------------- pure mapping


def parse_time(value: Any) -> datetime | None:
    """Jira timestamps: '2026-05-04T09:12:33.000+0200' (and ISO variants) or epoch (s or ms)."""
    return _parse_time(value, epoch=True)


def parse_date(value: Any) -> date | None:
    if not value:
        return None
    return date.fromisoformat(str(value)[:10])


_DC_SPRINT = re.compile(r"\[(.*)\]\s*$", re.S)


def parse_sprints(value: Any) -> list[dict[str, Any]]:
    """The sprint field: Cloud objects, or DC's 'com.atlassian.greenhopper...Sprint@x[id=1,...]'."""
    if not value:
        return []
    result: list[dict[str, Any]] = []
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, dict):
            result.append(entry)
            continue
        match = _DC_SPRINT.search(str(entry))
        if not match:
            raise ValueError(f"unrecognised sprint value {str(entry)[:60]!r}")
        attributes: dict[str, Any] = {}
        # values may contain commas (names, goals): split only before "key=" tokens
        for part in re.split(r",(?=[A-Za-z]+=)", match.group(1)):
            key, _, val = part.partition("=")
            attributes[key] = None if val in ("<null>", "") else val
        attributes["boardId"] = attributes.get("rapidViewId")
        result.append(attributes)
    return result


def _name(value: Any) -> str | None:
    """Select lists, users, teams and components come as objects; pick their readable name."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("displayName", "name", "value", "title"):
            if value.get(key):
                return str(value[key])
        return None
    if isinstance(value, list):
        names = [n for n in (_name(v) for v in value) if n]
        return names[0] if names else None
    return str(value)


def _points(value: Any) -> float | None:
    """Story points: a non-negative finite number (or empty); anything else is a ValueError."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("not a non-negative number")
    return number


def map_issue(
    raw: dict[str, Any], ctx: JiraContext
) -> tuple[WorkItemRow, list[LinkRow], list[SprintRow], list[str]]:
    """One Jira issue -> (work item row, link rows, sprint rows, problems).

    Every optional field is read on its own: a field of an unexpected type is reported and left
    empty, the item is still stored.
    """
    fields = raw.get("fields") or {}
    native = str(raw["id"])
    key = str(raw.get("key") or native)
    me = item_id(ctx.source, native)
    problems: list[str] = []
    mapping = ctx.config.fields

    def read(label: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{key}: field {label} unreadable ({exc}); left empty")
            return None

    raw_type = fields.get("issuetype")
    issue_type = _name(raw_type) or "Story"
    level, type_problem = ctx.level_of(raw_type)
    if type_problem:
        problems.append(type_problem)
    status = fields.get("status") or {}
    status_name = _name(status)
    category_key = None
    if isinstance(status, dict) and isinstance(status.get("statusCategory"), dict):
        category_key = status["statusCategory"].get("key")
    ctx.learn(status)
    category, status_problem = ctx.resolve_status(status_name, category_key)
    if status_problem:
        problems.append(status_problem)
    if category is None:
        problems.append("an issue has no status; counted as todo")
        category = "todo"

    estimate = None
    if mapping.story_points:
        try:
            estimate = _points(fields.get(mapping.story_points))
        except (TypeError, ValueError):
            problems.append(
                f"story points ({mapping.story_points}) not a non-negative number; left empty"
            )

    sprints = read("sprint", parse_sprints, fields.get(mapping.sprint)) if mapping.sprint else []
    sprints = sprints or []
    sprint_rows = [_sprint_row(s, ctx) for s in sprints if s.get("id") is not None]
    current_sprint = _current_sprint(sprint_rows)

    parent = fields.get("parent")
    parent_id = (
        item_id(ctx.source, parent["id"]) if isinstance(parent, dict) and parent.get("id") else None
    )
    parent_key = None
    if parent_id is None and mapping.epic_link:
        parent_key = read("epic_link", _name, fields.get(mapping.epic_link))

    priority = fields.get("priority")
    priority_rank = None
    if isinstance(priority, dict) and str(priority.get("id", "")).isdigit():
        priority_rank = int(priority["id"])

    flagged_value = fields.get(mapping.flagged) if mapping.flagged else None
    target_field = mapping.target_date or "duedate"

    row: WorkItemRow = {
        "item_id": me,
        "source": ctx.source,
        "native_id": native,
        "key": key,
        "url": f"{ctx.base_url}/browse/{key}",
        "organisation": ctx.organisation,
        "project": _project_key(fields.get("project")) or key.split("-")[0],
        "raw_type": issue_type,
        "level": level,
        "title": str(fields.get("summary") or ""),
        "has_description": bool(fields.get("description")),
        "raw_status": status_name,
        "status_category": category,
        "team": read("team", _team, fields, ctx, current_sprint),
        "assignee": _name(fields.get("assignee")),
        "priority": _name(priority),
        "priority_rank": priority_rank,
        "rank": read("rank", _name, fields.get(mapping.rank)) if mapping.rank else None,
        "estimate": estimate,
        "created": read("created", parse_time, fields.get("created")),
        "updated": read("updated", parse_time, fields.get("updated")),
        "resolved": read("resolutiondate", parse_time, fields.get("resolutiondate")),
        "due_date": read(target_field, parse_date, fields.get(target_field)),
        "sprint_id": current_sprint["sprint_id"] if current_sprint else None,
        "parent_id": parent_id,
        "parent_key": parent_key,
        "labels": [str(v) for v in fields.get("labels") or []],
        "business_value": _mapped_number(fields, mapping.business_value, "business_value", read),
        "cost": _mapped_number(fields, mapping.cost, "cost", read),
        "time_criticality": _mapped_number(
            fields, mapping.time_criticality, "time_criticality", read
        ),
        "risk_reduction": _mapped_number(fields, mapping.risk_reduction, "risk_reduction", read),
        "flagged": bool(flagged_value),
        "is_deleted": False,
    }
    links: list[LinkRow] = []
    for raw_link in fields.get("issuelinks") or []:
        link = read("issuelinks", _map_link, raw_link, me, ctx, problems)
        if link:
            links.append(link)
    return row, links, sprint_rows, problems


def _mapped_number(fields: dict[str, Any], field_id: str | None, label: str, read: Any) -> Any:
    return read(label, _number, fields.get(field_id)) if field_id else None


def _project_key(project: Any) -> str | None:
    return str(project.get("key")) if isinstance(project, dict) and project.get("key") else None


def _team(fields: dict[str, Any], ctx: JiraContext, sprint: SprintRow | None) -> str | None:
    config = ctx.config
    raw: str | None
    if config.teams_from == "field":
        raw = _name(fields.get(config.fields.team)) if config.fields.team else None
    elif config.teams_from == "component":
        raw = _name(fields.get("components"))
    elif config.teams_from == "project":
        raw = _project_key(fields.get("project"))
    else:  # board: the board of the issue's current sprint
        raw = sprint["board"] if sprint else None
    if raw is None:
        return None
    return config.team_map.get(raw, raw)


def _map_link(
    raw: dict[str, Any], me: str, ctx: JiraContext, problems: list[str]
) -> LinkRow | None:
    link_type = raw.get("type") or {}
    type_name = str(link_type.get("name") or "")
    other = raw.get("outwardIssue") or raw.get("inwardIssue")
    if not other or not other.get("id"):
        return None
    them = item_id(ctx.source, other["id"])
    outward = "outwardIssue" in raw  # I am the inward side's counterpart: "me <outward> them"
    known = ctx.link_kind(type_name)
    if known is None:
        problems.append(
            f"link type {type_name!r} is not configured; stored as relates "
            f"(add it to link_types.blocks or .depends to count it as a dependency)"
        )
        kind, outward_is_blocker = "relates", False
    else:
        kind, outward_is_blocker = known
    if kind == "blocks":
        # "me blocks them" (blocks type, outward) or "me depends on them" (depends type, outward)
        me_blocks = outward != outward_is_blocker
        blocker, dependent = (me, them) if me_blocks else (them, me)
    else:
        blocker, dependent = (me, them) if outward else (them, me)
    link_id = str(raw.get("id") or f"{blocker}>{dependent}:{type_name}")
    return link_row(ctx.source, link_id, kind, blocker, dependent, type_name)


def _sprint_row(raw: dict[str, Any], ctx: JiraContext) -> SprintRow:
    board = raw.get("boardId") or raw.get("originBoardId")
    state = str(raw.get("state") or "").lower() or None
    team = ctx.config.team_map.get(str(board)) if board is not None else None
    return {
        "sprint_id": item_id(ctx.source, raw["id"]),
        "source": ctx.source,
        "native_id": str(raw["id"]),
        "name": raw.get("name"),
        "team": team,
        "board": str(board) if board is not None else None,
        "state": state,
        "start": parse_time(raw.get("startDate")),
        "end": parse_time(raw.get("endDate")),
        "complete": parse_time(raw.get("completeDate")),
    }


def _current_sprint(sprints: list[SprintRow]) -> SprintRow | None:
    """The sprint an issue is in now: the active one, else the latest future, else the last one."""
    if not sprints:
        return None
    for state in ("active", "future"):
        matching = [s for s in sprints if s["state"] == state]
        if matching:
            return matching[-1]
    return max(sprints, key=lambda s: s["start"] or datetime.min.replace(tzinfo=UTC))


def map_histories(
    me: str,
    histories: Iterable[dict[str, Any]],
    ctx: JiraContext,
    problems: list[str] | None = None,
) -> list[StatusChangeRow]:
    """Changelog histories -> status (and Flagged) changes, oldest first.

    A status the run knows no category for is counted by its name and reported in ``problems``
    (once per occurrence, with the same text, so the run shows it with its count).
    """
    rows: list[StatusChangeRow] = []

    def category(status: Any) -> str | None:
        found, problem = ctx.resolve_status(None if status is None else str(status))
        if problem and problems is not None:
            problems.append(problem)
        return found

    flagged_id = ctx.config.fields.flagged
    for history in histories:
        at = parse_time(history.get("created"))
        for index, entry in enumerate(history.get("items") or []):
            field_id = entry.get("fieldId") or entry.get("field")
            if field_id == "status" or entry.get("field") == "status":
                kind = "status"
            elif field_id in (flagged_id, "Flagged") or entry.get("field") == "Flagged":
                kind = "flagged"
            else:
                continue
            before, after = entry.get("fromString"), entry.get("toString")
            is_status = kind == "status"
            rows.append(
                {
                    "source": ctx.source,
                    "item_id": me,
                    "change_id": f"{history.get('id')}.{index}",
                    "at": at,
                    "field": kind,
                    "from_status": before,
                    "to_status": after,
                    "from_category": category(before) if is_status else None,
                    "to_category": category(after) if is_status else None,
                }
            )
    rows.sort(key=lambda r: (r["at"] or datetime.min.replace(tzinfo=UTC), r["change_id"]))
    return rows


_BLOCKED_BY = phrases(*BLOCKED_BY_PHRASES)
_BLOCKS = phrases(*BLOCKS_PHRASES)


def map_remote_links(
    me: str, remote_links: Iterable[dict[str, Any]], ctx: JiraContext
) -> list[LinkRow]:
    """Remote links (other trackers' URLs) -> link rows with the far end left open for resolution."""
    rows: list[LinkRow] = []
    for link in remote_links:
        url = (link.get("object") or {}).get("url")
        if not url:
            continue
        relationship = str(link.get("relationship") or "")
        rows.append(
            open_link(
                ctx.source,
                f"remote:{link.get('id') or url}",
                me,
                url,
                f"remote: {relationship}".strip(),
                blocked_by=bool(_BLOCKED_BY.search(relationship)),
                blocks=bool(_BLOCKS.search(relationship)),
            )
        )
    return rows


# --------------------------------------------------------------------------- the connector


def _and(*clauses: str | None) -> str:
    return " AND ".join(clause for clause in clauses if clause)


def _by_id(ids: Iterable[str]) -> list[str]:
    """Ids once each, ascending (numerically where they are numbers)."""
    return sorted(set(ids), key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))


T = TypeVar("T")


async def _all(*awaitables: Awaitable[Any]) -> list[Any]:
    """``asyncio.gather`` that leaves nothing behind: on the first failure (or a cancellation)
    the other calls are cancelled *and* awaited before the error goes up, so no task keeps
    running against a closed client and no "Task exception was never retrieved" is printed."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _ahead(calls: Iterable[Callable[[], Awaitable[T]]], lookahead: int) -> AsyncGenerator[T]:
    """The calls' results in order, with up to ``lookahead`` calls in flight: the first answer is
    decoded and mapped while the later ones are still on the wire (a window awaited as a whole
    would leave the client idle until its slowest answer, then the network idle while it maps).
    On a failure or an early close every call still running is cancelled and awaited."""
    queued = iter(calls)
    running: deque[asyncio.Future[T]] = deque(
        asyncio.ensure_future(call()) for call in itertools.islice(queued, max(1, lookahead))
    )
    try:
        while running:
            result = await running[0]
            running.popleft()
            for call in itertools.islice(queued, 1):
                running.append(asyncio.ensure_future(call()))
            yield result
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _settle(task: asyncio.Task[Any]) -> None:
    """Cancel a task unless it is done, and wait for it; its outcome is retrieved, not raised."""
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _ids_of(page: dict[str, Any]) -> list[str]:
    return [str(issue["id"]) for issue in page["issues"]]


def requested_fields(config: SourceConfig) -> list[str]:
    """The issue fields a sync asks for: BASE_FIELDS plus the source's mapped custom fields."""
    mapping = config.fields
    extra = [
        mapping.story_points,
        mapping.sprint,
        mapping.team,
        mapping.epic_link,
        mapping.flagged,
        mapping.rank,
        mapping.business_value,
        mapping.cost,
        mapping.time_criticality,
        mapping.risk_reduction,
        mapping.target_date,
    ]
    return BASE_FIELDS + sorted({f for f in extra if f and f not in BASE_FIELDS})


class JiraConnector:
    """Reads one Jira Cloud or Data Center source. Never touches the warehouse."""

    def __init__(self, config: SourceConfig, client: TrackerClient) -> None:
        self.config = config
        self.client = client
        self.cloud = config.kind == "jira_cloud"
        self.api = "/rest/api/3" if self.cloud else "/rest/api/2"
        self.scope = config.jql or "order by created"
        self._zone: ZoneInfo | None = None
        # issues this run reads, once known (progress): the length of Cloud's id listing (exact,
        # and free: the ids are listed before the issues anyway, so approximate-count would be
        # one more call for a rougher number), Data Center's search ``total``
        self.total: int | None = None

    # -- public protocol

    async def fetch(self, since: datetime | None) -> AsyncIterator[Batch]:
        # reference data and the user's zone are independent: one round trip for all of them
        statuses, issue_types, sprints, since_clause = await _all(
            self._statuses(), self._issue_types(), self._board_sprints(), self._since_clause(since)
        )
        ctx = JiraContext.from_config(self.config, statuses, issue_types)
        # the remote-link listing runs beside the issue listing; pages wait for it only to map
        remote_task = asyncio.create_task(self._remote_link_ids(since_clause))
        try:
            where = self._where(since_clause)
            pages = self._cloud_issues(where) if self.cloud else self._dc_issues(where)
            pending = Batch(sprints=sprints)
            async with aclosing(pages):
                async for raws, histories in pages:
                    batch = await self._map_page(raws, histories, ctx, await remote_task)
                    pending.extend(batch)
                    if len(pending.work_items) >= BATCH_ITEMS:
                        yield pending
                        pending = Batch()
            await remote_task  # a failing remote-link listing fails the run even without pages
            yield pending
        finally:
            await _settle(remote_task)

    async def live_ids(self) -> set[str]:
        return set(await self._listing(self._where()))

    # -- search and fetch

    def _where(self, *clauses: str | None) -> str:
        """The source's scope (its own ORDER BY dropped) AND the given clauses; '' for all."""
        scope = _ORDER_BY.sub("", self.scope).strip()
        return _and(f"({scope})" if scope else None, *clauses)

    @staticmethod
    def _jql(where: str, order: str = "ORDER BY created ASC, key ASC") -> str:
        """A stable order (by creation) so pages never shift while they are read."""
        return f"{where} {order}" if where else order

    async def _since_clause(self, since: datetime | None) -> str | None:
        if since is None:
            return None
        zone = await self._user_zone()
        start = (since - timedelta(minutes=self.config.overlap_minutes)).astimezone(zone)
        return f'updated >= "{start:%Y/%m/%d %H:%M}"'

    async def _user_zone(self) -> ZoneInfo:
        """JQL dates are read in the API user's time zone: ask Jira which one that is."""
        if self._zone is None:
            me: Myself = await self.client.get(f"{self.api}/myself", shape=Myself)
            try:
                self._zone = ZoneInfo(str(me["timeZone"] or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = ZoneInfo("UTC")
        return self._zone

    async def _search(self, body: dict[str, Any]) -> IdsPage:
        page: IdsPage = await self.client.post(f"{self.api}/search/jql", json=body, shape=IdsPage)
        return page

    async def _ids(self, jql: str) -> list[str]:
        """Every issue id matching the JQL, in its order, one page after the other."""
        ids: list[str] = []
        if self.cloud:
            token: str | None = None
            while True:
                body: dict[str, Any] = {"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}
                if token:
                    body["nextPageToken"] = token
                page = await self._search(body)
                ids += _ids_of(dict(page))
                token = page.get("nextPageToken")
                if page.get("isLast", not token) or not token:
                    return ids
        start = 0
        while True:
            dc_page = await self._dc_id_page(jql, start)
            issues = dc_page["issues"]
            ids += [str(issue["id"]) for issue in issues]
            start += len(issues)
            if not issues or start >= dc_page["total"]:
                return ids

    async def _dc_id_page(self, jql: str, start: int) -> DcIdsPage:
        page: DcIdsPage = await self.client.get(
            f"{self.api}/search",
            params={"jql": jql, "fields": "id", "startAt": start, "maxResults": DC_ID_PAGE},
            shape=DcIdsPage,
        )
        return page

    async def _listing(self, where: str) -> list[str]:
        """Every id matching ``where``, pages read concurrently; ascending by id.

        DC: the first page tells the total, the other ``startAt`` pages go out together. Cloud's
        ``nextPageToken`` pages can only be read one after the other, so a listing longer than a
        page is split into id ranges (``id >= a AND id < b``, the outer ones open-ended, so every
        id is covered whatever the estimate) that are each paged on their own, side by side.
        """
        jql = self._jql(where)
        if not self.cloud:
            first = await self._dc_id_page(jql, 0)
            total = first["total"]
            size = len(first["issues"]) or DC_ID_PAGE
            rest: list[DcIdsPage] = await _all(
                *(self._dc_id_page(jql, s) for s in range(size, total, size))
            )
            found = {str(i["id"]) for page in (first, *rest) for i in page["issues"]}
            if len(found) < total:  # the set moved while it was read: page it through once more
                found |= set(await self._ids(jql))
            return _by_id(found)
        newest = self._jql(where, "ORDER BY created DESC")
        pair: list[IdsPage] = await _all(
            self._search({"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}),
            self._search({"jql": newest, "fields": ["id"], "maxResults": 1}),
        )
        head_page, last_page = pair
        head = _ids_of(dict(head_page))
        token = head_page.get("nextPageToken")
        if head_page.get("isLast", not token) or not token:
            return _by_id(head)
        numbers = [int(i) for i in head if i.isdigit()]
        if len(numbers) < len(head) or len(numbers) < 2:  # not numeric ids: page through
            return _by_id(set(head) | set(await self._ids(jql)))
        low = min(numbers)
        newest_ids = [int(i) for i in _ids_of(dict(last_page)) if i.isdigit()]
        high = max([*numbers, *newest_ids])
        per_id = len(numbers) / max(1, max(numbers) - low + 1)  # ids in scope per id value
        expected = per_id * (high - low + 1)
        parts = max(2, min(4 * self.config.concurrency, -(-int(expected) // RANGE_IDS)))
        cuts = sorted({low + (high - low + 1) * k // parts for k in range(1, parts)})
        bounds = [None, *cuts, None]
        ranges = [
            _and(where, None if a is None else f"id >= {a}", None if b is None else f"id < {b}")
            for a, b in itertools.pairwise(bounds)
        ]
        pages: list[list[str]] = await _all(*(self._ids(self._jql(r)) for r in ranges))
        return _by_id({i for page in pages for i in page})

    def _fields(self) -> list[str]:
        return requested_fields(self.config)

    async def _cloud_issues(
        self, where: str
    ) -> AsyncGenerator[tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]] | None]]]:
        """Ids first (cheap, 5000 a page), then issues + changelogs 100 at a time, concurrently."""
        ids = await self._listing(where)
        self.total = len(ids)
        chunks = [ids[i : i + ISSUE_CHUNK] for i in range(0, len(ids), ISSUE_CHUNK)]

        async def one(chunk: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            issues_page, histories = await _all(
                self.client.post(
                    f"{self.api}/issue/bulkfetch",
                    json={"issueIdsOrKeys": chunk, "fields": self._fields()},
                    shape=IssuesPage,
                ),
                self._cloud_changelogs(chunk),
            )
            return list(issues_page["issues"]), histories

        # bounded look-ahead keeps memory flat while the client's limit keeps requests in flight
        calls = (partial(one, chunk) for chunk in chunks)
        async with aclosing(_ahead(calls, self.client_concurrency * 2)) as results:
            async for result in results:
                yield result

    @property
    def client_concurrency(self) -> int:
        return self.config.concurrency

    async def _cloud_changelogs(self, ids: list[str]) -> dict[str, list[dict[str, Any]] | None]:
        """Full histories via changelog/bulkfetch (paged by nextPageToken across the issues)."""
        field_ids = ["status"] + (
            [self.config.fields.flagged] if self.config.fields.flagged else []
        )
        histories: dict[str, list[dict[str, Any]] | None] = {i: [] for i in ids}
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "issueIdsOrKeys": ids,
                "fieldIds": field_ids,
                "maxResults": 10000,
            }
            if token:
                body["nextPageToken"] = token
            page: ChangelogPage = await self.client.post(
                f"{self.api}/changelog/bulkfetch", json=body, shape=ChangelogPage
            )
            for entry in page["issueChangeLogs"]:
                bucket = histories.setdefault(str(entry["issueId"]), [])
                if bucket is not None:
                    bucket.extend(dict(h) for h in entry["changeHistories"])
            token = page.get("nextPageToken")
            if not token:
                return histories

    async def _dc_issues(
        self, where: str
    ) -> AsyncGenerator[tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]] | None]]]:
        """DC search pages: first page tells the total, the rest go out concurrently."""
        jql = self._jql(where)
        size = min(self.config.page_size if self.config.page_size > 100 else 1000, 1000)

        async def page(start: int) -> DcSearchPage:
            result: DcSearchPage = await self.client.get(
                f"{self.api}/search",
                params={
                    "jql": jql,
                    "startAt": start,
                    "maxResults": size,
                    "fields": ",".join(self._fields()),
                    "expand": "changelog",
                },
                shape=DcSearchPage,
            )
            return result

        first = await page(0)
        size = int(first.get("maxResults") or size) or size  # the server may cap it
        total = self.total = first["total"]
        yield await self._dc_histories([dict(i) for i in first["issues"]])
        calls = (partial(page, start) for start in range(size, total, size))
        async with aclosing(_ahead(calls, self.config.concurrency * 2)) as pages:
            async for result in pages:
                yield await self._dc_histories([dict(i) for i in result["issues"]])

    async def _dc_histories(
        self, issues: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]] | None]]:
        histories: dict[str, list[dict[str, Any]] | None] = {}
        incomplete: list[str] = []
        for issue in issues:
            changelog = issue.get("changelog") or {}
            entries = list(changelog.get("histories") or [])
            histories[str(issue["id"])] = entries
            if int(changelog.get("total") or 0) > len(entries):
                incomplete.append(str(issue["id"]))

        async def full(native: str) -> None:
            whole: IssueWithChangelog = await self.client.get(
                f"{self.api}/issue/{native}",
                params={"expand": "changelog", "fields": "id"},
                shape=IssueWithChangelog,
            )
            histories[native] = [dict(h) for h in whole["changelog"]["histories"]]

        await _all(*(full(n) for n in incomplete))
        return issues, histories

    async def _map_page(
        self,
        raws: list[dict[str, Any]],
        histories: dict[str, list[dict[str, Any]] | None],
        ctx: JiraContext,
        remote_ids: set[str],
    ) -> Batch:
        batch = Batch()
        seen_sprints: set[str] = set()
        with gc_paused():
            for raw in raws:  # current statuses first: their categories serve the histories too
                ctx.learn((raw.get("fields") or {}).get("status"))
            for raw in raws:
                try:
                    row, links, sprints, problems = map_issue(raw, ctx)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    batch.problems.append(
                        f"issue {raw.get('key') or raw.get('id')}: skipped ({exc})"
                    )
                    batch.skipped.append(str(raw.get("id")))
                    continue
                batch.work_items.append(row)
                batch.links += links
                batch.problems += problems
                for sprint in sprints:
                    if sprint["sprint_id"] not in seen_sprints:
                        seen_sprints.add(sprint["sprint_id"])
                        batch.sprints.append(sprint)
                entries = histories.get(row["native_id"])
                if entries is None:
                    batch.history_missing.append(row["item_id"])
                else:
                    batch.status_changes += map_histories(
                        row["item_id"], entries, ctx, batch.problems
                    )
        wanted = [r for r in batch.work_items if r["native_id"] in remote_ids]

        async def remote(row: WorkItemRow) -> list[LinkRow]:
            raw_links: RemoteLinkList = await self.client.get(
                f"{self.api}/issue/{row['native_id']}/remotelink", shape=RemoteLinkList
            )
            return map_remote_links(row["item_id"], [dict(link) for link in raw_links], ctx)

        for rows in await _all(*(remote(r) for r in wanted)):
            batch.links += rows
        return batch

    async def _remote_link_ids(self, since_clause: str | None) -> set[str]:
        """Jira has no bulk remote-link API: read them only for issues the config points at."""
        if not self.config.remote_links_jql:
            return set()
        return set(await self._ids(self.remote_links_query(since_clause)))

    def remote_links_query(self, since_clause: str | None) -> str:
        """Scope AND the run's window AND ``remote_links_jql``, with no dangling AND."""
        return self._jql(self._where(since_clause, f"({self.config.remote_links_jql})"))

    # -- reference data

    async def _statuses(self) -> dict[str, str]:
        """Status name -> category from ``/status`` (history entries carry names only)."""
        try:
            statuses: StatusList = await self.client.get(f"{self.api}/status", shape=StatusList)
        except TrackerError as exc:
            if exc.status == 404:
                return {}
            raise
        result: dict[str, str] = {}
        for status in statuses:
            category = status.get("statusCategory") or {}
            key = category.get("key")
            name = status.get("name")
            if name and key in JIRA_CATEGORY:
                result[str(name).lower()] = JIRA_CATEGORY[str(key)]
        return result

    async def _issue_types(self) -> list[dict[str, Any]]:
        """The type catalogue (``/issuetype``), so types are known even when an issue's payload
        lacks ``hierarchyLevel``/``subtask``; a Jira without it (404) just gives none."""
        try:
            types: IssueTypeList = await self.client.get(
                f"{self.api}/issuetype", shape=IssueTypeList
            )
        except TrackerError as exc:
            if exc.status == 404:
                return []
            raise
        return [dict(t) for t in types]

    async def _board_sprints(self) -> list[SprintRow]:
        ctx = JiraContext.from_config(self.config)
        results: list[list[SprintRow]] = await _all(
            *(self._sprints_of(board, ctx) for board in self.config.boards)
        )
        seen: dict[str, SprintRow] = {}
        for rows in results:
            for row in rows:
                seen.setdefault(row["sprint_id"], row)
        return list(seen.values())

    async def _sprints_of(self, board: int, ctx: JiraContext) -> list[SprintRow]:
        rows: list[SprintRow] = []
        start = 0
        while True:
            page: SprintPage = await self.client.get(
                f"/rest/agile/1.0/board/{board}/sprint",
                params={"startAt": start, "maxResults": 50},
                shape=SprintPage,
            )
            values = page["values"]
            for value in values:
                raw: dict[str, Any] = dict(value)
                raw.setdefault("originBoardId", board)
                rows.append(_sprint_row({**raw, "boardId": raw.get("originBoardId")}, ctx))
            start += len(values)
            if page.get("isLast", True) or not values:
                return rows
