"""Jira Cloud and Jira Data Center -> canonical batches.

Cloud (REST v3): ids come from ``POST /rest/api/3/search/jql`` (ids only, 5000 a page, ordered by
created so pages never shift); issues from ``POST /rest/api/3/issue/bulkfetch`` and full status
history from ``POST /rest/api/3/changelog/bulkfetch``, 100 issues a call, many calls in flight.
(``expand=changelog`` on search truncates at 100 entries; the old ``/rest/api/3/search`` is gone.)

Data Center (REST v2): ``GET /rest/api/2/search`` with ``startAt``: after the first page the total
is known, so the remaining pages go out concurrently. ``expand=changelog`` is complete on DC;
a history whose ``total`` exceeds what came back is completed from ``/issue/{id}?expand=changelog``.

Mapping a raw issue to canonical rows is pure (``map_issue``, ``map_histories``,
``map_remote_links``) and tested on payloads shaped like Atlassian's docs.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.http import TrackerClient, TrackerError
from warehouse.config import SourceConfig
from warehouse.model import Batch, Row, item_id

#: Issue type name (lower case) -> level, before the source's own ``levels`` mapping.
DEFAULT_LEVELS = {
    "initiative": "initiative",
    "theme": "initiative",
    "epic": "epic",
    "feature": "feature",
    "story": "story",
    "user story": "story",
    "improvement": "story",
    "spike": "story",
    "new feature": "story",
    "task": "task",
    "sub-task": "task",
    "subtask": "task",
    "bug": "bug",
    "defect": "bug",
    "impediment": "impediment",
}
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


@dataclass(frozen=True)
class JiraContext:
    """Everything the pure mapping needs, derived once from the source config."""

    source: str
    organisation: str
    base_url: str
    cloud: bool
    config: SourceConfig
    status_categories: dict[str, str] = field(default_factory=dict)  # status name (lower) -> cat

    @classmethod
    def from_config(
        cls, config: SourceConfig, statuses: dict[str, str] | None = None
    ) -> JiraContext:
        merged = dict(statuses or {})
        merged.update({k.lower(): v for k, v in config.status_categories.items()})
        return cls(
            source=config.name,
            organisation=config.organisation,
            base_url=config.base_url,
            cloud=config.kind == "jira_cloud",
            config=config,
            status_categories=merged,
        )

    def level(self, type_name: str) -> str:
        for name, level in self.config.levels.items():
            if name.lower() == type_name.lower():
                return level
        return DEFAULT_LEVELS.get(type_name.lower(), "story")

    def category(self, status: str | None, fallback: str | None = None) -> str | None:
        if status is None:
            return None
        return self.status_categories.get(status.lower(), fallback)

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
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value)
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("value")
    return float(value)


def map_issue(raw: dict[str, Any], ctx: JiraContext) -> tuple[Row, list[Row], list[Row], list[str]]:
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

    issue_type = _name(fields.get("issuetype")) or "Story"
    status = fields.get("status") or {}
    status_name = _name(status)
    category_key = (
        ((status.get("statusCategory") or {}).get("key")) if isinstance(status, dict) else None
    )
    category = ctx.category(status_name) or JIRA_CATEGORY.get(str(category_key))
    if category is None:
        problems.append(f"{key}: status {status_name!r} has no category; counted as todo")
        category = "todo"

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

    row: Row = {
        "item_id": me,
        "source": ctx.source,
        "native_id": native,
        "key": key,
        "url": f"{ctx.base_url}/browse/{key}",
        "organisation": ctx.organisation,
        "project": _project_key(fields.get("project")) or key.split("-")[0],
        "raw_type": issue_type,
        "level": ctx.level(issue_type),
        "title": str(fields.get("summary") or ""),
        "has_description": bool(fields.get("description")),
        "raw_status": status_name,
        "status_category": category,
        "team": read("team", _team, fields, ctx, current_sprint),
        "assignee": _name(fields.get("assignee")),
        "priority": _name(priority),
        "priority_rank": priority_rank,
        "rank": read("rank", _name, fields.get(mapping.rank)) if mapping.rank else None,
        "estimate": read("story_points", _number, fields.get(mapping.story_points))
        if mapping.story_points
        else None,
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
    links: list[Row] = []
    for raw_link in fields.get("issuelinks") or []:
        link = read("issuelinks", _map_link, raw_link, me, ctx, problems)
        if link:
            links.append(link)
    return row, links, sprint_rows, problems


def _mapped_number(fields: dict[str, Any], field_id: str | None, label: str, read: Any) -> Any:
    return read(label, _number, fields.get(field_id)) if field_id else None


def _project_key(project: Any) -> str | None:
    return str(project.get("key")) if isinstance(project, dict) and project.get("key") else None


def _team(fields: dict[str, Any], ctx: JiraContext, sprint: Row | None) -> str | None:
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


def _map_link(raw: dict[str, Any], me: str, ctx: JiraContext, problems: list[str]) -> Row | None:
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
    return {
        "source": ctx.source,
        "link_id": str(raw.get("id") or f"{blocker}>{dependent}:{type_name}"),
        "from_item": blocker,
        "to_item": dependent,
        "target_url": None,
        "kind": kind,
        "raw_type": type_name,
        "resolved": None,
    }


def _sprint_row(raw: dict[str, Any], ctx: JiraContext) -> Row:
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


def _current_sprint(sprints: list[Row]) -> Row | None:
    """The sprint an issue is in now: the active one, else the latest future, else the last one."""
    if not sprints:
        return None
    for state in ("active", "future"):
        matching = [s for s in sprints if s["state"] == state]
        if matching:
            return matching[-1]
    return max(sprints, key=lambda s: s["start"] or datetime.min.replace(tzinfo=UTC))


def map_histories(me: str, histories: Iterable[dict[str, Any]], ctx: JiraContext) -> list[Row]:
    """Changelog histories -> status (and Flagged) changes, oldest first."""
    rows: list[Row] = []
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
            rows.append(
                {
                    "source": ctx.source,
                    "item_id": me,
                    "change_id": f"{history.get('id')}.{index}",
                    "at": at,
                    "field": kind,
                    "from_status": before,
                    "to_status": after,
                    "from_category": ctx.category(before, "in_progress" if before else None)
                    if kind == "status"
                    else None,
                    "to_category": ctx.category(after, "in_progress") if kind == "status" else None,
                }
            )
    rows.sort(key=lambda r: (r["at"] or datetime.min.replace(tzinfo=UTC), r["change_id"]))
    return rows


_BLOCKED_BY = re.compile(r"blocked by|depends on|waits? (on|for)|afhankelijk van", re.I)
_BLOCKS = re.compile(r"\bblocks\b|is depended on|blokkeert", re.I)


def map_remote_links(
    me: str, remote_links: Iterable[dict[str, Any]], ctx: JiraContext
) -> list[Row]:
    """Remote links (other trackers' URLs) -> link rows with the far end left open for resolution."""
    rows: list[Row] = []
    for link in remote_links:
        url = (link.get("object") or {}).get("url")
        if not url:
            continue
        relationship = str(link.get("relationship") or "")
        if _BLOCKED_BY.search(relationship):
            kind, from_item, to_item = "blocks", None, me
        elif _BLOCKS.search(relationship):
            kind, from_item, to_item = "blocks", me, None
        else:
            kind, from_item, to_item = "relates", me, None
        rows.append(
            {
                "source": ctx.source,
                "link_id": f"remote:{link.get('id') or url}",
                "from_item": from_item,
                "to_item": to_item,
                "target_url": url,
                "kind": kind,
                "raw_type": f"remote: {relationship}".strip(),
                "resolved": None,
            }
        )
    return rows


# --------------------------------------------------------------------------- the connector


def _and(*clauses: str | None) -> str:
    return " AND ".join(clause for clause in clauses if clause)


def _by_id(ids: Iterable[str]) -> list[str]:
    """Ids once each, ascending (numerically where they are numbers)."""
    return sorted(set(ids), key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))


class JiraConnector:
    """Reads one Jira Cloud or Data Center source. Never touches the warehouse."""

    def __init__(self, config: SourceConfig, client: TrackerClient) -> None:
        self.config = config
        self.client = client
        self.cloud = config.kind == "jira_cloud"
        self.api = "/rest/api/3" if self.cloud else "/rest/api/2"
        self.scope = config.jql or "order by created"
        self._zone: ZoneInfo | None = None

    # -- public protocol

    async def fetch(self, since: datetime | None) -> AsyncIterator[Batch]:
        # reference data and the user's zone are independent: one round trip for all of them
        statuses, sprints, since_clause = await asyncio.gather(
            self._statuses(), self._board_sprints(), self._since_clause(since)
        )
        ctx = JiraContext.from_config(self.config, statuses)
        # the remote-link listing runs beside the issue listing; pages wait for it only to map
        remote_task = asyncio.create_task(self._remote_link_ids(since_clause))
        try:
            where = self._where(since_clause)
            pages = self._cloud_issues(where) if self.cloud else self._dc_issues(where)
            pending = Batch(sprints=sprints)
            async for raws, histories in pages:
                batch = await self._map_page(raws, histories, ctx, await remote_task)
                pending.extend(batch)
                if len(pending.work_items) >= BATCH_ITEMS:
                    yield pending
                    pending = Batch()
            await remote_task  # a failing remote-link listing fails the run even without pages
            yield pending
        finally:
            if not remote_task.done():
                remote_task.cancel()

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
            me = await self.client.get(f"{self.api}/myself")
            try:
                self._zone = ZoneInfo(str(me.get("timeZone") or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = ZoneInfo("UTC")
        return self._zone

    async def _ids(self, jql: str) -> list[str]:
        """Every issue id matching the JQL, in its order, one page after the other."""
        ids: list[str] = []
        if self.cloud:
            token: str | None = None
            while True:
                body: dict[str, Any] = {"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}
                if token:
                    body["nextPageToken"] = token
                page = await self.client.post(f"{self.api}/search/jql", json=body)
                ids += [str(issue["id"]) for issue in page.get("issues") or []]
                token = page.get("nextPageToken")
                if page.get("isLast", not token) or not token:
                    return ids
        start = 0
        while True:
            page = await self._dc_id_page(jql, start)
            issues = page.get("issues") or []
            ids += [str(issue["id"]) for issue in issues]
            start += len(issues)
            if not issues or start >= int(page.get("total", 0)):
                return ids

    async def _dc_id_page(self, jql: str, start: int) -> dict[str, Any]:
        page: dict[str, Any] = await self.client.get(
            f"{self.api}/search",
            params={"jql": jql, "fields": "id", "startAt": start, "maxResults": DC_ID_PAGE},
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
            total = int(first.get("total") or 0)
            size = len(first.get("issues") or []) or DC_ID_PAGE
            rest = await asyncio.gather(
                *(self._dc_id_page(jql, s) for s in range(size, total, size))
            )
            found = {str(i["id"]) for page in (first, *rest) for i in page.get("issues") or []}
            if len(found) < total:  # the set moved while it was read: page it through once more
                found |= set(await self._ids(jql))
            return _by_id(found)
        newest = self._jql(where, "ORDER BY created DESC")
        pair: list[dict[str, Any]] = await asyncio.gather(
            self.client.post(
                f"{self.api}/search/jql", json={"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}
            ),
            self.client.post(
                f"{self.api}/search/jql", json={"jql": newest, "fields": ["id"], "maxResults": 1}
            ),
        )
        first, last_page = pair
        head = [str(issue["id"]) for issue in first.get("issues") or []]
        token = first.get("nextPageToken")
        if first.get("isLast", not token) or not token:
            return _by_id(head)
        numbers = [int(i) for i in head if i.isdigit()]
        if len(numbers) < len(head) or len(numbers) < 2:  # not numeric ids: page through
            return _by_id(set(head) | set(await self._ids(jql)))
        low = min(numbers)
        high = max([*numbers, *(int(i["id"]) for i in last_page.get("issues") or [])])
        per_id = len(numbers) / max(1, max(numbers) - low + 1)  # ids in scope per id value
        expected = per_id * (high - low + 1)
        parts = max(2, min(4 * self.config.concurrency, -(-int(expected) // RANGE_IDS)))
        cuts = sorted({low + (high - low + 1) * k // parts for k in range(1, parts)})
        bounds = [None, *cuts, None]
        ranges = [
            _and(where, None if a is None else f"id >= {a}", None if b is None else f"id < {b}")
            for a, b in itertools.pairwise(bounds)
        ]
        pages = await asyncio.gather(*(self._ids(self._jql(r)) for r in ranges))
        return _by_id({i for page in pages for i in page})

    def _fields(self) -> list[str]:
        mapping = self.config.fields
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

    async def _cloud_issues(
        self, where: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]] | None]]]:
        """Ids first (cheap, 5000 a page), then issues + changelogs 100 at a time, concurrently."""
        ids = await self._listing(where)
        chunks = [ids[i : i + ISSUE_CHUNK] for i in range(0, len(ids), ISSUE_CHUNK)]

        async def one(chunk: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            issues_page, histories = await asyncio.gather(
                self.client.post(
                    f"{self.api}/issue/bulkfetch",
                    json={"issueIdsOrKeys": chunk, "fields": self._fields()},
                ),
                self._cloud_changelogs(chunk),
            )
            return issues_page.get("issues") or [], histories

        # bounded look-ahead keeps memory flat while the client's limit keeps requests in flight
        window = max(1, self.client_concurrency * 2)
        for start in range(0, len(chunks), window):
            for result in await asyncio.gather(*(one(c) for c in chunks[start : start + window])):
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
            page = await self.client.post(f"{self.api}/changelog/bulkfetch", json=body)
            for entry in page.get("issueChangeLogs") or []:
                bucket = histories.setdefault(str(entry.get("issueId")), [])
                if bucket is not None:
                    bucket.extend(entry.get("changeHistories") or [])
            token = page.get("nextPageToken")
            if not token:
                return histories

    async def _dc_issues(
        self, where: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]] | None]]]:
        """DC search pages: first page tells the total, the rest go out concurrently."""
        jql = self._jql(where)
        size = min(self.config.page_size if self.config.page_size > 100 else 1000, 1000)

        async def page(start: int) -> dict[str, Any]:
            result: dict[str, Any] = await self.client.get(
                f"{self.api}/search",
                params={
                    "jql": jql,
                    "startAt": start,
                    "maxResults": size,
                    "fields": ",".join(self._fields()),
                    "expand": "changelog",
                },
            )
            return result

        first = await page(0)
        size = int(first.get("maxResults") or size) or size  # the server may cap it
        total = int(first.get("total") or 0)
        yield await self._dc_histories(first.get("issues") or [])
        starts = list(range(size, total, size))
        window = max(1, self.config.concurrency * 2)
        for offset in range(0, len(starts), window):
            pages = await asyncio.gather(*(page(s) for s in starts[offset : offset + window]))
            for result in pages:
                yield await self._dc_histories(result.get("issues") or [])

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
            whole = await self.client.get(
                f"{self.api}/issue/{native}", params={"expand": "changelog", "fields": "id"}
            )
            histories[native] = list((whole.get("changelog") or {}).get("histories") or [])

        await asyncio.gather(*(full(n) for n in incomplete))
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
        for raw in raws:
            try:
                row, links, sprints, problems = map_issue(raw, ctx)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.problems.append(f"issue {raw.get('key') or raw.get('id')}: skipped ({exc})")
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
                batch.status_changes += map_histories(row["item_id"], entries, ctx)
        wanted = [r for r in batch.work_items if r["native_id"] in remote_ids]

        async def remote(row: Row) -> list[Row]:
            raw_links = await self.client.get(f"{self.api}/issue/{row['native_id']}/remotelink")
            return map_remote_links(row["item_id"], raw_links or [], ctx)

        for rows in await asyncio.gather(*(remote(r) for r in wanted)):
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
            statuses = await self.client.get(f"{self.api}/status")
        except TrackerError as exc:
            if exc.status == 404:
                return {}
            raise
        result: dict[str, str] = {}
        for status in statuses or []:
            key = (status.get("statusCategory") or {}).get("key")
            if status.get("name") and key in JIRA_CATEGORY:
                result[str(status["name"]).lower()] = JIRA_CATEGORY[key]
        return result

    async def _board_sprints(self) -> list[Row]:
        ctx = JiraContext.from_config(self.config)
        results = await asyncio.gather(
            *(self._sprints_of(board, ctx) for board in self.config.boards)
        )
        seen: dict[str, Row] = {}
        for rows in results:
            for row in rows:
                seen.setdefault(row["sprint_id"], row)
        return list(seen.values())

    async def _sprints_of(self, board: int, ctx: JiraContext) -> list[Row]:
        rows: list[Row] = []
        start = 0
        while True:
            page = await self.client.get(
                f"/rest/agile/1.0/board/{board}/sprint", params={"startAt": start, "maxResults": 50}
            )
            values = page.get("values") or []
            for value in values:
                value.setdefault("originBoardId", board)
                rows.append(_sprint_row({**value, "boardId": value.get("originBoardId")}, ctx))
            start += len(values)
            if page.get("isLast", True) or not values:
                return rows
