"""Azure DevOps (Services and Server) -> canonical batches.

The flow, all REST 7.1:

1. Ids: ``POST {org}/{project}/_apis/wit/wiql`` returns ids only and refuses result sets above
   20,000 (HTTP 400, VS402337). We never ask for an open-ended set: every query is a window
   ``[System.Id] > {last} ORDER BY [System.Id] ASC`` with ``$top``; the next window starts after
   the highest id of the previous one, and the listing ends when a window comes back short. A
   window that still hits VS402337 (a server with a lower cap) is halved and asked again; the
   size that worked is remembered per source (``AzureDevOpsConnector.window_sizes``), so the next
   listing - the reconciliation listing, the next run - starts from it instead of from 20,000.
2. Items: ``POST {org}/_apis/wit/workitemsbatch`` with at most 200 ids, ``$expand=relations``
   (which returns every field; ``fields`` cannot be combined with it) and ``errorPolicy=omit`` (an
   item deleted since the listing comes back as null instead of failing the chunk). Chunks go
   out concurrently; the shared client caps requests in flight per host.
3. History: see ``AzureDevOpsConnector`` for the choice between the reporting revisions feed and
   per-item updates. A Batch always carries the complete status history of its items.
4. State categories: ``GET {org}/{project}/_apis/wit/workitemtypes/{type}/states``, cached per
   type per run, so custom processes and custom states work without configuration.
5. Levels: ``GET {org}/{project}/_apis/wit/workitemtypecategories`` and
   ``GET {org}/{project}/_apis/work/processconfiguration``, once per run (see Levels below).
6. Sprints: the project's teams, then each team's iterations.

Validate before acting: every answer is decoded into its shape (``connectors.azure_devops_shapes``)
by ``TrackerClient.answer``; one that does not fit is asked for again and then raises
``MalformedAnswer`` naming the endpoint, which fails the source's run before anything of it is
used. A WIQL window is the end of a listing only when it is a valid answer, so a maintenance page
can never pass for an empty project and reconciliation never deletes from a broken listing. Two
narrow fallbacks, each reported in a problem line:

- ``workitemsbatch``: an item that does not fit its shape inside a valid answer is skipped alone;
  an answer that is not a valid envelope is split in halves until the item that breaks it stands
  alone - but when both halves of a split fail too, the endpoint is broken, not an item, and the
  run fails.
- history: an unreadable revisions feed sends every item to ``/updates``; an unreadable
  ``/updates`` keeps that item's stored history (``Batch.history_missing``).

Levels (which canonical level a work item type is), first match wins:

1. the source's ``levels`` config, by type name: an override;
2. the type's work item type category: Microsoft.EpicCategory -> epic, FeatureCategory -> feature,
   BugCategory -> bug, RequirementCategory -> story, TaskCategory -> task; a type on a portfolio
   backlog of ``processconfiguration`` other than the Epic and Feature ones (a custom portfolio
   level, which Azure Boards puts above Epic) -> initiative. A custom type placed in a category
   (an "Enabler" in the Feature category) gets that category's level;
3. a name rule (``DEFAULT_LEVELS``: the standard type names, Impediment / Issue);
4. nothing to go by (a type in no backlog category nor a hidden one, e.g. Test Case) -> story
   *with a problem line* naming the type (no item id, so the run shows it once with its count).

Status categories (todo / in_progress / done), first match wins:

1. the source's ``status_categories`` config, by state name: an override;
2. the type's own state list (``workitemtypes/{type}/states``) and its state categories;
3. a name heuristic (``connectors.base.guess_category``: done-like, todo-like, else in_progress)
   *with a problem line* per state (no item id, so the run counts them).

Mapping a raw payload to canonical rows is pure (``map_work_item``, ``map_revisions``,
``updates_to_revisions``, ``map_team_iterations``, ``states_to_categories``) and tested on payloads
shaped like Microsoft's docs.

Mapping decisions (the contract other modules rely on):

- ``sprint_id`` = ``"<source>:<iteration path>"`` (e.g. ``ado:Fabrikam\\Release 1\\Sprint 2``):
  the path is the one key both a work item (``System.IterationPath``) and a team iteration carry;
  the iteration GUID is not on the work item. An item in the project's root iteration (no
  backslash in the path) has no sprint.
- Dependency links: ``link_id`` = ``"dep:<blocker item_id>><dependent item_id>"``, so the
  ``Dependency-Forward`` on A and the ``Dependency-Reverse`` on B give the same row. Related:
  ``"rel:<lower>~<higher>"``; duplicates: ``"dup:<duplicate>><original>"``; cross-tracker
  (Hyperlink / ArtifactLink / remote work item link): ``"url:<item_id>><url>"``.
- Status categories: Proposed -> todo, InProgress -> in_progress, Resolved / Completed -> done,
  Removed -> done (removed work is finished for flow purposes and must not count as open WIP;
  ``raw_status`` still says "Removed" for anyone who wants to tell them apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from pmolens.connectors.azure_devops_shapes import (
    WORK_ITEM,
    CategoryList,
    ProcessConfiguration,
    RevisionsBatch,
    StatesList,
    TeamIterations,
    TeamsPage,
    UpdatesPage,
    WiqlResult,
    WorkItemsBatch,
)
from pmolens.connectors.base import guess_category
from pmolens.connectors.http import (
    MALFORMED_ATTEMPTS,
    MalformedAnswer,
    Misfit,
    TrackerClient,
    TrackerError,
    decode,
    decode_each,
    mismatch,
)
from pmolens.connectors.mapping import (
    BLOCKED_BY_PHRASES,
    BLOCKS_PHRASES,
    COMMON_LEVELS,
    gc_paused,
    link_row,
    open_link,
    parse_time,
    phrases,
)
from pmolens.connectors.mapping import number as _number
from pmolens.warehouse.config import SourceConfig
from pmolens.warehouse.model import Batch, LinkRow, SprintRow, StatusChangeRow, WorkItemRow, item_id

API_VERSION = "7.1"
WIQL_CAP = 20_000  # the largest result WIQL returns without VS402337
BATCH_IDS = 200  # workitemsbatch limit (VS403474 above it)
BATCH_ITEMS = 1000  # items per yielded Batch
CHUNKS_PER_BATCH = BATCH_ITEMS // BATCH_IDS
UPDATES_PAGE = 200  # workItems/{id}/updates page size
UPDATES_THRESHOLD = 1000
FEED_SLICES_PER_SLOT = 2  # revision feed slices per request the host allows in flight
FEED_SLICE_MIN = 100  # a first feed page shorter than this is read on as one chain

#: Work item type (lower case) -> level: the name rules, after ``levels`` and the categories.
#: The shared names plus the other processes' standard types (Scrum, CMMI, Basic's Issue).
DEFAULT_LEVELS = {
    **COMMON_LEVELS,
    "product backlog item": "story",
    "requirement": "story",
    "issue": "impediment",
}
#: ADO state category -> canonical category (see the module docstring for Removed).
ADO_CATEGORY = {
    "proposed": "todo",
    "inprogress": "in_progress",
    "resolved": "done",
    "completed": "done",
    "removed": "done",
}
TIMEFRAME_STATE = {"past": "closed", "current": "active", "future": "future"}
#: Work item type category -> level, checked in this order (a type in two categories, e.g. a bug
#: also on the requirement backlog, gets the first).
CATEGORY_LEVELS = (
    ("microsoft.epiccategory", "epic"),
    ("microsoft.featurecategory", "feature"),
    ("microsoft.bugcategory", "bug"),
    ("microsoft.requirementcategory", "story"),
    ("microsoft.taskcategory", "task"),
)

F_STATE = "System.State"
F_TYPE = "System.WorkItemType"
F_CHANGED = "System.ChangedDate"
F_BLOCKED = "Microsoft.VSTS.CMMI.Blocked"
ESTIMATE_FIELDS = (
    "Microsoft.VSTS.Scheduling.StoryPoints",
    "Microsoft.VSTS.Scheduling.Effort",
    "Microsoft.VSTS.Scheduling.Size",
)
RANK_FIELDS = ("Microsoft.VSTS.Common.StackRank", "Microsoft.VSTS.Common.BacklogPriority")
TARGET_DATE_FIELDS = ("Microsoft.VSTS.Scheduling.TargetDate", "Microsoft.VSTS.Scheduling.DueDate")
#: Defaults where the processes have a standard field. There is no standard field for cost nor
#: for risk reduction / opportunity enablement (WSJF's third term): map them with ``fields``
#: (e.g. ``risk_reduction = "Custom.RROEValue"``).
DEFAULT_FIELDS = {
    "business_value": "Microsoft.VSTS.Common.BusinessValue",
    "time_criticality": "Microsoft.VSTS.Common.TimeCriticality",
}

REL_PARENT = "system.linktypes.hierarchy-reverse"
REL_CHILD = "system.linktypes.hierarchy-forward"
REL_SUCCESSOR = "system.linktypes.dependency-forward"  # target is the successor: I block it
REL_PREDECESSOR = "system.linktypes.dependency-reverse"  # target is the predecessor: it blocks me
REL_RELATED = "system.linktypes.related"
REL_DUPLICATE = "system.linktypes.duplicate-forward"  # target is a duplicate of me
REL_DUPLICATE_OF = "system.linktypes.duplicate-reverse"  # I am a duplicate of the target
REL_REMOTE_SUCCESSOR = "system.linktypes.remote.dependency-forward"
REL_REMOTE_PREDECESSOR = "system.linktypes.remote.dependency-reverse"
REL_REMOTE_RELATED = "system.linktypes.remote.related"
NON_ITEM_RELATIONS = {"attachedfile", "hyperlink", "artifactlink"}
#: Known work item link types that say nothing about order or dependency: not stored.
IGNORED_LINK_PREFIXES = (
    "microsoft.vsts.common.testedby",  # test case <-> requirement
    "microsoft.vsts.common.affects",  # CMMI change request -> requirement
    "microsoft.vsts.testcase.",  # shared steps / shared parameters
)

_TRACKER_ITEM_URL = re.compile(
    r"/browse/[A-Za-z][A-Za-z0-9_]*-\d+|/_workitems/edit/\d+|/_apis/wit/workitems/\d+", re.I
)
#: The shared phrases plus ADO's dependency link names, which hyperlink comments echo.
_BLOCKED_BY = phrases(*BLOCKED_BY_PHRASES, "predecessor", "geblokkeerd door")
_BLOCKS = phrases(*BLOCKS_PHRASES, "successor")
_HTML_TAG = re.compile(r"<[^>]*>")


# --------------------------------------------------------------------------- pure mapping


@dataclass(frozen=True)
class AdoContext:
    """Everything the pure mapping needs: the source config plus the state categories read."""

    source: str
    organisation: str
    base_url: str
    config: SourceConfig
    #: work item type (lower) -> state name (lower) -> canonical category
    states: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: work item type (lower) -> level, from the work item type categories (``type_levels``)
    type_levels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        config: SourceConfig,
        states: Mapping[str, Mapping[str, str]] | None = None,
        type_levels: Mapping[str, str] | None = None,
    ) -> AdoContext:
        return cls(
            source=config.name,
            organisation=config.organisation,
            base_url=config.base_url.rstrip("/"),
            config=config,
            states=states if states is not None else {},
            type_levels=type_levels if type_levels is not None else {},
        )

    def level(self, type_name: str | None) -> str:
        return self.level_of(type_name)[0]

    def level_of(self, type_name: str | None) -> tuple[str, str | None]:
        """(level, problem or None) for a work item type; see the module doc for the order."""
        name = (type_name or "").lower()
        for configured, level in self.config.levels.items():
            if configured.lower() == name:
                return level, None
        found = self.type_levels.get(name) or DEFAULT_LEVELS.get(name)
        if found:
            return found, None
        if type_name is None:
            return "story", None  # reported by the mapping with the item (no type field at all)
        return "story", (
            f"work item type {type_name!r} is in no backlog category of Azure DevOps and has no "
            f"name rule; stored as story - map it under levels"
        )

    def category(self, type_name: str | None, state: str | None) -> str | None:
        """Config override first (by state name), then the type's own states; None if unknown."""
        if state is None:
            return None
        lowered = state.lower()
        for name, category in self.config.status_categories.items():
            if name.lower() == lowered:
                return category
        return self.states.get((type_name or "").lower(), {}).get(lowered)

    def resolve_state(
        self, type_name: str | None, state: str | None
    ) -> tuple[str | None, str | None]:
        """(category, problem or None): config, the type's states, else the name heuristic with
        a problem line that names the state and type only (so the run counts it)."""
        if state is None:
            return None, None
        found = self.category(type_name, state)
        if found is not None:
            return found, None
        guess = guess_category(state)
        return guess, (
            f"state {state!r} of type {type_name!r} is not among the type's states; counted as "
            f"{guess} by its name - set status_categories to be sure"
        )

    def team(self, fields: Mapping[str, Any]) -> str | None:
        """Team of an item: by area path (longest team_map prefix, else the last segment),
        or by a team field / the project when the source says so."""
        config = self.config
        if config.teams_from == "field" and config.fields.team:
            raw = _text(fields.get(config.fields.team))
            return config.team_map.get(raw, raw) if raw else None
        if config.teams_from == "project":
            raw = _text(fields.get("System.TeamProject"))
            return config.team_map.get(raw, raw) if raw else None
        return team_from_area_path(_text(fields.get("System.AreaPath")), config.team_map)


def team_from_area_path(area_path: str | None, team_map: Mapping[str, str]) -> str | None:
    """The longest team_map key that is the area path or one of its ancestors wins; without a
    match the last segment of the path (ADO's default team area is ``Project\\Team``)."""
    if not area_path:
        return None
    path = area_path.strip("\\")
    lowered = path.lower()
    best: tuple[int, str] | None = None
    for key, team in team_map.items():
        prefix = key.strip("\\").lower()
        matches = prefix and (lowered == prefix or lowered.startswith(prefix + "\\"))
        if matches and (best is None or len(prefix) > best[0]):
            best = (len(prefix), team)
    if best is not None:
        return best[1]
    return path.rsplit("\\", 1)[-1]


def parse_day(value: Any) -> date | None:
    """A date-only field (target date). ADO stores the user's local midnight in UTC, e.g.
    '2026-06-29T22:00:00Z' for 30 June in Amsterdam: rounding to the nearest UTC midnight gives
    back the day the user picked for any offset between -12 and +12 hours."""
    moment = parse_time(value)
    if moment is None:
        return None
    return (moment + timedelta(hours=12)).date()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _priority(value: Any) -> int | None:
    """Priority 1 (highest) .. 4; any positive whole number is kept, others are refused."""
    number = _number(value)
    if number is None:
        return None
    if not number.is_integer() or not 0 < number < 2**31:
        raise ValueError(f"{value!r} is not a priority number")
    return int(number)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):  # identity refs and the like
        for key in ("displayName", "name", "uniqueName"):
            if value.get(key):
                return str(value[key])
        return None
    return str(value)


def _person(value: Any) -> str | None:
    """IdentityRef -> displayName; older servers send 'Name <domain\\user>' strings."""
    name = _text(value)
    if name and not isinstance(value, dict):
        name = re.sub(r"\s*<[^>]*>\s*$", "", name) or name
    return name


def _has_text(value: Any) -> bool:
    if not value:
        return False
    text = _HTML_TAG.sub("", str(value)).replace("&nbsp;", " ")
    return bool(text.strip())


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "true", "1") if value is not None else False


def _labels(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):  # includeTagRef style
        return [t for t in (_text(v) for v in value) if t]
    return [tag.strip() for tag in str(value).split(";") if tag.strip()]


def _rank(value: Any) -> str | None:
    """StackRank / BacklogPriority are doubles; zero-padded text sorts like the numbers."""
    number = _number(value)
    return None if number is None else f"{number:021.6f}"


def states_to_categories(payload: Any) -> dict[str, str]:
    """``workitemtypes/{type}/states`` -> state name (lower) -> canonical category."""
    result: dict[str, str] = {}
    for state in _values(payload):
        if not isinstance(state, dict) or not state.get("name"):
            continue
        category = ADO_CATEGORY.get(str(state.get("category") or "").lower())
        if category:
            result[str(state["name"]).lower()] = category
    return result


def categories_to_levels(categories: Any, process: Any = None) -> dict[str, str]:
    """``workitemtypecategories`` (+ ``processconfiguration``) -> type name (lower) -> level.

    A type on a portfolio backlog that is not the Epic or Feature one is a custom portfolio level
    above Epic: initiative. Categories are checked in ``CATEGORY_LEVELS`` order; hidden and test
    categories give no level.
    """
    members: dict[str, set[str]] = {}
    for category in _values(categories):
        if not isinstance(category, dict):
            continue
        ref = str(category.get("referenceName") or "").lower()
        names = {
            str(t["name"]).lower()
            for t in [category.get("defaultWorkItemType"), *(category.get("workItemTypes") or [])]
            if isinstance(t, dict) and t.get("name")
        }
        members.setdefault(ref, set()).update(names)
    levels: dict[str, str] = {}
    portfolio = process.get("portfolioBacklogs") if isinstance(process, dict) else None
    for backlog in portfolio or []:
        ref = str(backlog.get("referenceName") or "").lower() if isinstance(backlog, dict) else ""
        if not ref or ref in ("microsoft.epiccategory", "microsoft.featurecategory"):
            continue
        for entry in backlog.get("workItemTypes") or []:
            if isinstance(entry, dict) and entry.get("name"):
                levels.setdefault(str(entry["name"]).lower(), "initiative")
        for name in members.get(ref, ()):
            levels.setdefault(name, "initiative")
    for ref, level in CATEGORY_LEVELS:
        for name in members.get(ref, ()):
            levels.setdefault(name, level)
    return levels


def _values(payload: Any, key: str = "value") -> list[Any]:
    """The list in an ADO collection response ({"count": n, "value": [...]}), tolerating the
    "values" spelling (reporting revisions, some doc samples) and bare lists."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for name in (key, "value", "values"):
            found = payload.get(name)
            if isinstance(found, list):
                return found
    return []


def target_id(url: Any) -> str | None:
    """The id a relation points at is the last path segment of its url."""
    if not isinstance(url, str):
        return None
    segment = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return segment if segment.isdigit() else None


def map_work_item(
    raw: dict[str, Any], ctx: AdoContext
) -> tuple[WorkItemRow, list[LinkRow], list[str]]:
    """One work item (workitemsbatch, ``$expand=relations``) -> (row, link rows, problems).

    Every optional field is read on its own: a value of an unexpected type is reported (item id,
    field, what was done) and left empty; the item is still emitted. Raises KeyError only when
    the item has no id at all.
    """
    native = str(raw["id"])
    me = item_id(ctx.source, native)
    fields = raw.get("fields")
    if not isinstance(fields, dict):
        fields = {}
    problems: list[str] = []
    who = f"work item {native}"
    mapping = ctx.config.fields

    def read(field_name: str, label: str, fn: Any) -> Any:
        value = fields.get(field_name)
        try:
            return fn(value)
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            problems.append(
                f"{who}: field {field_name} = {str(value)[:40]!r} is not a valid {label} "
                f"({exc}); {label} left empty"
            )
            return None

    def first(names: Iterable[str], label: str, fn: Any) -> Any:
        for name in names:
            if fields.get(name) not in (None, ""):
                return read(name, label, fn)
        return None

    def pick(override: str | None, defaults: Iterable[str], label: str, fn: Any) -> Any:
        """A configured field replaces the defaults; else the first default that is set."""
        return read(override, label, fn) if override else first(defaults, label, fn)

    def configured(attr: str, label: str, fn: Any) -> Any:
        override = getattr(mapping, attr)
        name = override or DEFAULT_FIELDS.get(attr)
        return read(name, label, fn) if name else None

    type_name = _text(fields.get(F_TYPE))
    level, type_problem = ctx.level_of(type_name)
    if type_name is None:
        problems.append(f"{who}: no {F_TYPE}; level set to story")
    elif type_problem:
        problems.append(type_problem)
    state = _text(fields.get(F_STATE))
    category, state_problem = ctx.resolve_state(type_name, state)
    if state_problem:
        problems.append(state_problem)
    if category is None:
        problems.append(f"{who}: has no state; counted as todo")
        category = "todo"

    project = _text(fields.get("System.TeamProject")) or ctx.config.project or ""
    priority_rank = read("Microsoft.VSTS.Common.Priority", "priority", _priority)
    rank = pick(mapping.rank, RANK_FIELDS, "rank", _rank)
    estimate = pick(mapping.story_points, ESTIMATE_FIELDS, "estimate", _number)
    due = pick(mapping.target_date, TARGET_DATE_FIELDS, "target date", parse_day)

    iteration = _text(fields.get("System.IterationPath"))
    sprint_id = item_id(ctx.source, iteration) if iteration and "\\" in iteration else None
    created = read("System.CreatedDate", "created date", parse_time)
    if created is None and "System.CreatedDate" not in fields:
        problems.append(f"{who}: no System.CreatedDate; created left empty")
    resolved = read("Microsoft.VSTS.Common.ClosedDate", "closed date", parse_time)
    if resolved is None and category == "done":
        resolved = read("Microsoft.VSTS.Common.StateChangeDate", "state change date", parse_time)

    links, parent_id = _map_relations(raw.get("relations"), me, ctx, problems, who)
    if parent_id is None and fields.get("System.Parent") not in (None, ""):
        parent = str(fields["System.Parent"])
        parent_id = item_id(ctx.source, parent) if parent.isdigit() else None

    row: WorkItemRow = {
        "item_id": me,
        "source": ctx.source,
        "native_id": native,
        "key": native,
        "url": f"{ctx.base_url}/{quote(project, safe='')}/_workitems/edit/{native}",
        "organisation": ctx.organisation,
        "project": project or None,
        "raw_type": type_name,
        "level": level,
        "title": _text(fields.get("System.Title")) or "",
        "has_description": _has_text(fields.get("System.Description"))
        or _has_text(fields.get("Microsoft.VSTS.Common.AcceptanceCriteria")),
        "raw_status": state,
        "status_category": category,
        "team": ctx.team(fields),
        "assignee": _person(fields.get("System.AssignedTo")),
        "priority": str(priority_rank) if priority_rank is not None else None,
        "priority_rank": priority_rank,
        "rank": rank,
        "estimate": estimate,
        "created": created,
        "updated": read(F_CHANGED, "changed date", parse_time),
        "resolved": resolved,
        "due_date": due,
        "sprint_id": sprint_id,
        "parent_id": parent_id,
        "parent_key": None,
        "labels": _labels(fields.get("System.Tags")),
        "business_value": configured("business_value", "business value", _number),
        "cost": configured("cost", "cost", _number),
        "time_criticality": configured("time_criticality", "time criticality", _number),
        "risk_reduction": configured("risk_reduction", "risk reduction", _number),
        "flagged": _flag(fields.get(mapping.flagged or F_BLOCKED)),
        "is_deleted": False,
    }
    return row, links, problems


def _map_relations(
    relations: Any, me: str, ctx: AdoContext, problems: list[str], who: str
) -> tuple[list[LinkRow], str | None]:
    """Relations -> (link rows, parent item_id). Hierarchy is the parent, never a link row."""
    links: list[LinkRow] = []
    parent_id: str | None = None
    if relations is None:
        return links, None
    if not isinstance(relations, list):
        problems.append(f"{who}: relations is not a list; links skipped")
        return links, None
    for relation in relations:
        if not isinstance(relation, dict):
            continue
        rel = str(relation.get("rel") or "")
        kind = rel.lower()
        url = relation.get("url")
        attributes = _dict(relation.get("attributes"))
        if kind in ("hyperlink", "artifactlink"):
            if isinstance(url, str) and _TRACKER_ITEM_URL.search(url):
                links.append(_cross_link(me, url, str(attributes.get("comment") or ""), rel, ctx))
            continue
        if kind in NON_ITEM_RELATIONS or kind.startswith(IGNORED_LINK_PREFIXES):
            continue
        if kind in (REL_REMOTE_SUCCESSOR, REL_REMOTE_PREDECESSOR, REL_REMOTE_RELATED):
            if isinstance(url, str):
                links.append(_remote_link(me, url, kind, rel, ctx))
            continue
        other = target_id(url)
        if other is None:
            problems.append(f"{who}: relation {rel or '?'} has no work item id in {url!r}; skipped")
            continue
        them = item_id(ctx.source, other)
        if kind == REL_PARENT:
            parent_id = them
        elif kind == REL_CHILD:
            continue  # the child's own Hierarchy-Reverse names its parent
        elif kind == REL_SUCCESSOR:
            links.append(_link(ctx, "blocks", me, them, rel))
        elif kind == REL_PREDECESSOR:
            links.append(_link(ctx, "blocks", them, me, rel))
        elif kind == REL_RELATED:
            low, high = sorted((me, them))
            links.append(_link(ctx, "relates", low, high, rel))
        elif kind == REL_DUPLICATE:
            links.append(_link(ctx, "duplicates", them, me, rel))
        elif kind == REL_DUPLICATE_OF:
            links.append(_link(ctx, "duplicates", me, them, rel))
        else:
            links.append(_configured_link(ctx, me, them, rel, problems, who))
    return links, parent_id


def _link(ctx: AdoContext, kind: str, source_end: str, target_end: str, rel: str) -> LinkRow:
    """A same-tracker link that is the same row whichever end it was read from: the id comes
    from the ordered ends, the raw type is named by its forward end."""
    prefix = {"blocks": "dep", "relates": "rel", "duplicates": "dup"}[kind]
    joiner = "~" if kind == "relates" else ">"
    if rel.lower().endswith("-reverse"):
        rel = rel[: -len("-reverse")] + "-Forward"
    link_id = f"{prefix}:{source_end}{joiner}{target_end}"
    return link_row(ctx.source, link_id, kind, source_end, target_end, rel)


def _configured_link(
    ctx: AdoContext, me: str, them: str, rel: str, problems: list[str], who: str
) -> LinkRow:
    """A work item link type we do not know: ``link_types`` may name it (matched on the last part
    of its reference name, e.g. 'Custom.LinkTypes.Blocks-Forward' -> 'Blocks'); else relates."""
    base, _, direction = rel.rpartition("-")
    forward = direction.lower() != "reverse"
    name = (base or rel).rsplit(".", 1)[-1].lower()
    types = ctx.config.link_types
    if name in (t.lower() for t in types.blocks):  # forward: I block the target
        blocker, dependent = (me, them) if forward else (them, me)
        return _link(ctx, "blocks", blocker, dependent, rel)
    if name in (t.lower() for t in types.depends):  # forward: I depend on the target
        blocker, dependent = (them, me) if forward else (me, them)
        return _link(ctx, "blocks", blocker, dependent, rel)
    if name in (t.lower() for t in types.duplicates):
        duplicate, original = (them, me) if forward else (me, them)
        return _link(ctx, "duplicates", duplicate, original, rel)
    if name not in (t.lower() for t in types.relates):
        problems.append(
            f"{who}: link type {rel!r} is not known; stored as relates "
            f"(name it under link_types to count it as a dependency)"
        )
    low, high = sorted((me, them))
    return _link(ctx, "relates", low, high, rel)


def _cross_link(me: str, url: str, comment: str, rel: str, ctx: AdoContext) -> LinkRow:
    """A Hyperlink / ArtifactLink to another tracker's item: the far end stays open (null) for
    the warehouse to resolve; the comment says which way the dependency runs."""
    blocked_by, blocks = bool(_BLOCKED_BY.search(comment)), bool(_BLOCKS.search(comment))
    return open_link(
        ctx.source, f"url:{me}>{url}", me, url, rel, blocked_by=blocked_by, blocks=blocks
    )


def _remote_link(me: str, url: str, kind: str, rel: str, ctx: AdoContext) -> LinkRow:
    """Remote work item links (another ADO organisation): direction from Forward / Reverse."""
    blocked_by, blocks = kind == REL_REMOTE_PREDECESSOR, kind == REL_REMOTE_SUCCESSOR
    return open_link(
        ctx.source, f"url:{me}>{url}", me, url, rel, blocked_by=blocked_by, blocks=blocks
    )


def updates_to_revisions(updates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``workItems/{id}/updates`` (deltas) -> revision snapshots shaped like the reporting feed,
    so one function maps both. Values carry over from earlier updates; the change time is the
    update's own ``System.ChangedDate`` (``revisedDate`` is 9999-01-01 on the latest one)."""
    snapshots: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for update in sorted(
        (u for u in updates if isinstance(u, dict)), key=lambda u: int(u.get("rev") or 0)
    ):
        changed = _dict(update.get("fields"))
        for name, delta in changed.items():
            if isinstance(delta, dict) and "newValue" in delta:
                current[name] = delta["newValue"]
            elif isinstance(delta, dict) and "oldValue" in delta:
                current.pop(name, None)  # cleared
        delta = changed.get(F_CHANGED)
        at = delta.get("newValue") if isinstance(delta, dict) else None
        if at is None and not str(update.get("revisedDate") or "").startswith("9999"):
            at = update.get("revisedDate")
        snapshot_fields = dict(current)
        snapshot_fields[F_CHANGED] = at
        snapshots.append(
            {"id": update.get("workItemId"), "rev": update.get("rev"), "fields": snapshot_fields}
        )
    return snapshots


def map_revisions(
    me: str,
    native: str,
    revisions: Iterable[dict[str, Any]],
    ctx: AdoContext,
    fallback_type: str | None = None,
) -> tuple[list[StatusChangeRow], list[str]]:
    """Revision snapshots (oldest first after sorting by rev) -> status and flagged changes.

    A row is a *transition*: the state (or Blocked) differs from the previous revision; the
    creation revision is not a change, as with Jira's changelog. change_id = "<id>.<rev>" for
    status and "<id>.<rev>.flagged" for the Blocked field. Flagged rows carry "Yes" in to_status
    when the item became blocked and null when it was cleared.
    """
    rows: list[StatusChangeRow] = []
    problems: list[str] = []
    flag_field = ctx.config.fields.flagged or F_BLOCKED
    previous: tuple[str | None, str | None, bool] | None = None

    def category(type_name: str | None, state: str | None) -> str | None:
        found, problem = ctx.resolve_state(type_name, state)
        if problem:
            problems.append(problem)
        return found

    ordered = sorted(
        (r for r in revisions if isinstance(r, dict)), key=lambda r: int(r.get("rev") or 0)
    )
    for revision in ordered:
        fields = _dict(revision.get("fields"))
        rev = revision.get("rev")
        type_name = _text(fields.get(F_TYPE)) or (previous[0] if previous else fallback_type)
        state = _text(fields.get(F_STATE)) or (previous[1] if previous else None)
        blocked = _flag(fields.get(flag_field))
        if previous is not None:
            try:
                at = parse_time(fields.get(F_CHANGED))
            except (TypeError, ValueError):
                problems.append(f"work item {native} rev {rev}: unreadable change date; left empty")
                at = None
            before_type, before_state, before_blocked = previous
            if state != before_state and state is not None:
                rows.append(
                    {
                        "source": ctx.source,
                        "item_id": me,
                        "change_id": f"{native}.{rev}",
                        "at": at,
                        "field": "status",
                        "from_status": before_state,
                        "to_status": state,
                        "from_category": category(before_type, before_state),
                        "to_category": category(type_name, state),
                    }
                )
            if blocked != before_blocked:
                rows.append(
                    {
                        "source": ctx.source,
                        "item_id": me,
                        "change_id": f"{native}.{rev}.flagged",
                        "at": at,
                        "field": "flagged",
                        "from_status": "Yes" if before_blocked else None,
                        "to_status": "Yes" if blocked else None,
                        "from_category": None,
                        "to_category": None,
                    }
                )
        previous = (type_name, state, blocked)
    return rows, problems


def history_complete(revisions: list[dict[str, Any]], current_rev: Any) -> bool:
    """Does a feed history hold every revision of the item from its creation up to the one
    just fetched (no gaps)?"""
    revs = {int(r.get("rev") or 0) for r in revisions if isinstance(r, dict)}
    if not revs or min(revs) != 1 or len(revs) != max(revs):
        return False
    try:
        return max(revs) >= int(current_rev)
    except (TypeError, ValueError):
        return True


def _changed(revision: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(_dict(revision.get("fields")).get(F_CHANGED))
    except (TypeError, ValueError):
        return None


def _group_revisions(parts: Iterable[list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Feed revisions -> per work item id, once per rev, in rev order."""
    seen: dict[str, dict[int, dict[str, Any]]] = {}
    for part in parts:
        for revision in part:
            try:
                rev = int(revision.get("rev") or 0)
            except (TypeError, ValueError):
                rev = 0
            seen.setdefault(str(revision["id"]), {}).setdefault(rev, revision)
    return {item: [by_rev[r] for r in sorted(by_rev)] for item, by_rev in seen.items()}


def map_team_iterations(
    team: str, payload: Any, ctx: AdoContext, problems: list[str] | None = None
) -> list[SprintRow]:
    """``teamsettings/iterations`` of one team -> sprint rows (board = ADO team name).

    The iteration path is the sprint's key (see the module doc) and cannot be told from the name
    (a sprint may sit at any depth): an iteration without ``path`` - Microsoft's own sample of
    this list has none - is not stored and is reported in ``problems``, once per team with its
    count."""
    rows: list[SprintRow] = []
    pathless: list[str] = []
    for iteration in _values(payload):
        if not isinstance(iteration, dict):
            continue
        path = _text(iteration.get("path"))
        if not path:
            pathless.append(_text(iteration.get("name")) or _text(iteration.get("id")) or "?")
            continue
        attributes = _dict(iteration.get("attributes"))
        state = TIMEFRAME_STATE.get(str(attributes.get("timeFrame") or "").lower())
        end = parse_time(attributes.get("finishDate"))
        rows.append(
            {
                "sprint_id": item_id(ctx.source, path),
                "source": ctx.source,
                "native_id": path,
                "name": _text(iteration.get("name")) or path.rsplit("\\", 1)[-1],
                "team": ctx.config.team_map.get(team, team),
                "board": team,
                "state": state,
                "start": parse_time(attributes.get("startDate")),
                "end": end,
                "complete": end if state == "closed" else None,
            }
        )
    if pathless and problems is not None:
        problems.append(
            f"iterations of team {team!r}: {len(pathless)} without a path (e.g. "
            f"{pathless[0]!r}); not stored as sprints, so items in them have no sprint row"
        )
    return rows


def merge_sprints(per_team: Iterable[list[SprintRow]]) -> list[SprintRow]:
    """One row per (iteration path, team): teams share the project's iterations (Azure DevOps's
    default), and a sprint serves every team that lists it. Listing order is kept, so the first
    team that lists an iteration comes first (the warehouse's ``sprints.team``)."""
    seen: dict[tuple[str, str | None], SprintRow] = {}
    for rows in per_team:
        for row in rows:
            seen.setdefault((row["sprint_id"], row["team"]), row)
    return list(seen.values())


async def _all(*awaitables: Any) -> list[Any]:
    """Await together; when one fails the others are cancelled *and* awaited (none is left
    running or with an exception nobody retrieved), then the first failure is raised."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task


def wiql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def wiql_time(moment: datetime) -> str:
    """UTC ISO literal; the query is sent with timePrecision=true so the time counts."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_cap_error(exc: TrackerError) -> bool:
    text = str(exc)
    return exc.status == 400 and ("VS402337" in text or "QueryResultSizeLimit" in text)


# --------------------------------------------------------------------------- the connector


@dataclass
class _Run:
    """Per-run state: state categories per type and problems not yet handed out in a Batch."""

    states: dict[str, dict[str, str]] = field(default_factory=dict)
    state_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    levels_task: asyncio.Task[dict[str, str]] | None = None
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # native ids not read, see Batch.skipped

    async def type_levels(self) -> dict[str, str]:
        return await self.levels_task if self.levels_task is not None else {}

    def take_problems(self) -> list[str]:
        taken, self.problems = self.problems, []
        return taken

    def hand_out(self, batch: Batch) -> None:
        """Move the run's pending problems and skipped ids into the batch about to be yielded."""
        batch.problems = self.take_problems() + batch.problems
        batch.skipped += self.skipped
        self.skipped = []


@dataclass
class _Chunk:
    raws: list[dict[str, Any]]
    histories: dict[str, list[dict[str, Any]] | None]


class AzureDevOpsConnector:
    """Reads one Azure DevOps project (optionally limited to area paths). Never touches DuckDB.

    History, the choice: the warehouse *replaces* the status history of every item in a batch,
    so each item needs its whole history, not only what changed since the cursor.

    - Full run: the reporting revisions feed of the project from the start (a few fields only),
      read while the ids are listed; one sequential stream, far fewer calls than one per item.
    - Incremental run with at most ``updates_threshold`` changed items: ``/updates`` per changed
      item, concurrently (cost grows with the change, not with the project).
    - Incremental run with more: the revisions feed from the start, as on a full run.
    - Any item whose feed history does not start at rev 1 or stops short of the revision just
      fetched (moved in from another project, or changed while we read) gets ``/updates`` too.
    An item whose history cannot be read is listed in ``Batch.history_missing`` (its stored
    history is kept) with a problem line.
    """

    #: WIQL window size that worked, per source (``name@base_url/project``): a server with a cap
    #: below 20,000 is halved down to once per process, not on every listing.
    window_sizes: ClassVar[dict[str, int]] = {}

    def __init__(self, config: SourceConfig, client: TrackerClient) -> None:
        if not config.project:
            raise ValueError(f"source {config.name!r}: azure_devops needs project")
        self.config = config
        self.client = client
        self.project = config.project
        self._project_path = quote(config.project, safe="")
        self.wiql_top = WIQL_CAP
        self.updates_threshold = UPDATES_THRESHOLD
        self.total: int | None = None  # work items this run reads: the WIQL id count (progress)

    # -- public protocol

    async def fetch(self, since: datetime | None) -> AsyncIterator[Batch]:
        run = _Run()
        sprints_task = asyncio.create_task(self._sprints(run))
        run.levels_task = asyncio.create_task(self._type_levels())
        feed_task: asyncio.Task[dict[str, list[dict[str, Any]]] | None] | None = None
        pending: list[asyncio.Task[Any]] = [sprints_task, run.levels_task]
        items: AsyncGenerator[Batch, None] | None = None
        try:
            if since is None:
                feed_task = asyncio.create_task(self._revision_feed(run))
                pending.append(feed_task)
            ids = await self._wiql_ids(self._since_clause(since))
            self.total = len(ids)
            if since is not None and len(ids) > self.updates_threshold:
                feed_task = asyncio.create_task(self._revision_feed(run))
                pending.append(feed_task)
            # items are fetched while the feed is still being read; each chunk waits for it
            items = self._item_batches(ids, feed_task, run)
            sprints_added = False
            async for batch in items:
                if not sprints_added:
                    batch.sprints = [*await sprints_task, *batch.sprints]
                    sprints_added = True
                run.hand_out(batch)
                yield batch
            if not sprints_added:
                await run.type_levels()  # an unreadable hierarchy fails the run even without items
                last = Batch(sprints=await sprints_task)
                run.hand_out(last)
                yield last
        finally:
            if items is not None:
                await items.aclose()  # cancels its prefetch
            # no task outlives the run, and none is left with an exception nobody retrieved
            for task in [*pending, *run.state_tasks.values()]:
                if not task.done():
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def live_ids(self) -> set[str]:
        """Every id in scope now (no date filter): the reconciliation listing."""
        return {str(i) for i in await self._wiql_ids(None)}

    # -- HTTP with shape checks

    async def _answer(
        self,
        method: str,
        path: str,
        shape: Any,
        run: _Run | None,
        *,
        what: str | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """``TrackerClient.answer`` with the api-version; each answer that did not fit (and was
        asked for again) is a problem line of the run. Raises ``MalformedAnswer`` after the
        client's attempts."""
        what = what or f"{method} {path}"

        def heard(problem: str, attempt: int) -> None:
            if run is not None:
                run.problems.append(
                    f"{what}: {problem} (attempt {attempt} of {MALFORMED_ATTEMPTS})"
                    + ("; asked again" if attempt < MALFORMED_ATTEMPTS else "")
                )

        return await self.client.answer(
            method,
            path,
            shape,
            params={"api-version": API_VERSION, **(params or {})},
            json=body,
            what=what,
            on_retry=heard,
        )

    # -- ids

    def _since_clause(self, since: datetime | None) -> str | None:
        if since is None:
            return None
        start = since - timedelta(minutes=self.config.overlap_minutes)
        return f"[System.ChangedDate] >= {wiql_literal(wiql_time(start))}"

    def _conditions(self, since_clause: str | None) -> list[str]:
        conditions = ["[System.TeamProject] = @project"]
        if self.config.area_paths:
            under = " OR ".join(
                f"[System.AreaPath] UNDER {wiql_literal(p)}" for p in self.config.area_paths
            )
            conditions.append(f"({under})")
        if since_clause:
            conditions.append(since_clause)
        return conditions

    @property
    def _window_key(self) -> str:
        return f"{self.config.name}@{self.client.base_url.rstrip('/')}/{self.project}"

    async def _wiql_ids(self, since_clause: str | None) -> list[int]:
        """Ids in scope, in windows that each stay under the WIQL cap (see module docstring).

        Every window is a validated answer (``WiqlResult``): a maintenance page or an error
        object under 200 raises ``MalformedAnswer``, never passes for an empty or short window.
        """
        conditions = self._conditions(since_clause)
        path = f"/{self._project_path}/_apis/wit/wiql"
        top = min(self.wiql_top, self.window_sizes.get(self._window_key, WIQL_CAP))
        last = 0
        ids: list[int] = []
        while True:
            where = " AND ".join([*conditions, f"[System.Id] > {last}"])
            query = f"SELECT [System.Id] FROM WorkItems WHERE {where} ORDER BY [System.Id] ASC"
            params: dict[str, Any] = {"$top": top}
            if since_clause:
                params["timePrecision"] = "true"
            try:
                result: WiqlResult = await self._answer(
                    "POST", path, WiqlResult, None, params=params, body={"query": query}
                )
            except TrackerError as exc:
                if is_cap_error(exc) and top > 1:
                    top = max(1, top // 2)
                    continue
                raise
            if top < self.window_sizes.get(self._window_key, WIQL_CAP):
                self.window_sizes[self._window_key] = top  # remembered for the next listing
            window = sorted(ref["id"] for ref in result["workItems"])
            ids += window
            if len(window) < top:
                return ids
            if window[-1] <= last:  # a server ignoring the id clause would loop for ever
                raise TrackerError(f"WIQL window after id {last} did not advance")
            last = window[-1]

    # -- items

    async def _item_batches(
        self,
        ids: list[int],
        feed: asyncio.Task[dict[str, list[dict[str, Any]]] | None] | None,
        run: _Run,
    ) -> AsyncGenerator[Batch, None]:
        """Chunks of 200 fetched concurrently in a sliding window (the client caps requests in
        flight), yielded in order as Batches of CHUNKS_PER_BATCH chunks. A slow chunk holds back
        only its own Batch, never the requests behind it; the window bounds memory."""
        chunks = [ids[i : i + BATCH_IDS] for i in range(0, len(ids), BATCH_IDS)]
        window = 2 * max(CHUNKS_PER_BATCH, self.config.concurrency)
        tasks: deque[asyncio.Task[_Chunk]] = deque()
        started = 0

        def top_up() -> None:
            nonlocal started
            while started < len(chunks) and len(tasks) < window:
                tasks.append(asyncio.create_task(self._chunk(chunks[started], feed, run)))
                started += 1

        try:
            top_up()
            while tasks:
                group: list[_Chunk] = []
                while tasks and len(group) < CHUNKS_PER_BATCH:
                    group.append(await tasks.popleft())
                    top_up()
                yield await self._map_chunks(group, run)
        finally:
            for task in tasks:
                task.cancel()

    async def _chunk(
        self,
        ids: list[int],
        feed_task: asyncio.Task[dict[str, list[dict[str, Any]]] | None] | None,
        run: _Run,
    ) -> _Chunk:
        """One workitemsbatch; the history feed (read side by side) is awaited only after it."""
        raws = await self._work_items(ids, run)
        feed = await feed_task if feed_task is not None else None
        histories: dict[str, list[dict[str, Any]] | None] = {}
        need_updates: list[str] = []
        for raw in raws:
            native = str(raw["id"])
            revisions = feed.get(native) if feed is not None else None
            if revisions is not None and history_complete(revisions, raw.get("rev")):
                histories[native] = revisions
            else:
                need_updates.append(native)
        if need_updates:
            found = await asyncio.gather(*(self._updates(n, run) for n in need_updates))
            histories.update(zip(need_updates, found, strict=True))
        return _Chunk(raws, histories)

    async def _work_items(self, ids: list[int], run: _Run) -> list[dict[str, Any]]:
        """workitemsbatch for up to 200 ids; see the module doc for what an unreadable answer
        costs (the item that breaks it, or the run when no half of the chunk can be read)."""
        try:
            return self._readable_items(await self._batch_answer(ids, run), run)
        except MalformedAnswer as exc:
            return await self._isolate(ids, exc, run)

    async def _batch_answer(self, ids: list[int], run: _Run) -> WorkItemsBatch:
        answer: WorkItemsBatch = await self._answer(
            "POST",
            "/_apis/wit/workitemsbatch",
            WorkItemsBatch,
            run,
            what=f"POST /_apis/wit/workitemsbatch (ids {ids[0]}..{ids[-1]})",
            body={"ids": ids, "$expand": "relations", "errorPolicy": "omit"},
        )
        return answer

    async def _isolate(
        self, ids: list[int], exc: MalformedAnswer, run: _Run
    ) -> list[dict[str, Any]]:
        """``ids`` gave no readable answer: ask for each half. A half that answers is kept, one
        that does not is split on; a single id that does not is skipped with a problem line.
        When both halves fail as well, no item is to blame: the endpoint is, and the run fails."""
        if len(ids) == 1:
            run.problems.append(f"{exc}; work item {ids[0]} skipped this run")
            run.skipped.append(str(ids[0]))
            return []
        halves = [ids[: len(ids) // 2], ids[len(ids) // 2 :]]

        async def attempt(part: list[int]) -> WorkItemsBatch | MalformedAnswer:
            try:
                return await self._batch_answer(part, run)
            except MalformedAnswer as failed:
                return failed

        answers = await asyncio.gather(*(attempt(part) for part in halves))
        if all(isinstance(answer, MalformedAnswer) for answer in answers):
            raise exc
        found: list[dict[str, Any]] = []
        for part, answer in zip(halves, answers, strict=True):
            if isinstance(answer, MalformedAnswer):
                found += await self._isolate(part, answer, run)
            else:
                found += self._readable_items(answer, run)
        return found

    @staticmethod
    def _readable_items(answer: WorkItemsBatch, run: _Run) -> list[dict[str, Any]]:
        """The items of a valid envelope, each checked on its own: one that does not fit its
        shape is skipped alone (null entries are ids deleted since the listing)."""
        items: list[dict[str, Any]] = []
        entries = answer["value"]
        for entry, item in zip(entries, decode_each(WORK_ITEM, entries), strict=True):
            if isinstance(item, Misfit):
                loose = decode(Any, entry)
                native = loose.get("id") if isinstance(loose, dict) else None
                run.problems.append(
                    f"work item {native if native is not None else '?'} in "
                    f"POST /_apis/wit/workitemsbatch: {mismatch(item)}; skipped this run"
                )
                run.skipped.append(str(native))
                continue
            if item is not None:
                items.append(item)
        return items

    async def _updates(self, native: str, run: _Run) -> list[dict[str, Any]] | None:
        """The item's whole history as revision snapshots, or None when it cannot be read."""
        path = f"/{self._project_path}/_apis/wit/workItems/{native}/updates"
        updates: list[dict[str, Any]] = []
        skip = 0
        while True:
            try:
                page: UpdatesPage = await self._answer(
                    "GET", path, UpdatesPage, run, params={"$top": UPDATES_PAGE, "$skip": skip}
                )
            except MalformedAnswer as exc:
                run.problems.append(f"{exc}; stored history of work item {native} kept")
                return None
            except TrackerError as exc:
                if exc.status == 404:  # deleted since the listing
                    return None
                raise
            values: list[dict[str, Any]] = [dict(u) for u in page["value"]]
            updates += values
            if len(values) < UPDATES_PAGE:
                return updates_to_revisions(updates)
            skip += len(values)

    async def _map_chunks(self, chunks: list[_Chunk], run: _Run) -> Batch:
        types: set[str] = set()
        for chunk in chunks:
            for raw in chunk.raws:
                fields = _dict(raw.get("fields"))
                types.add(str(fields.get(F_TYPE) or ""))
            for revisions in chunk.histories.values():
                for revision in revisions or []:
                    fields = _dict(revision.get("fields"))
                    types.add(str(fields.get(F_TYPE) or ""))
        await self._ensure_states({t for t in types if t}, run)
        ctx = AdoContext.from_config(self.config, run.states, await run.type_levels())
        batch = Batch()
        with gc_paused():
            for chunk in chunks:
                for raw in chunk.raws:
                    try:
                        row, links, problems = map_work_item(raw, ctx)
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        batch.problems.append(f"work item {raw.get('id')!r}: skipped ({exc})")
                        batch.skipped.append(str(raw.get("id")))
                        continue
                    batch.work_items.append(row)
                    batch.links += links
                    batch.problems += problems
                    revisions = chunk.histories.get(row["native_id"])
                    if revisions is None:
                        batch.history_missing.append(row["item_id"])
                        continue
                    changes, history_problems = map_revisions(
                        row["item_id"], row["native_id"], revisions, ctx, row["raw_type"]
                    )
                    batch.status_changes += changes
                    batch.problems += list(dict.fromkeys(history_problems))
        return batch

    # -- history feed

    async def _revision_feed(self, run: _Run) -> dict[str, list[dict[str, Any]]] | None:
        """The project's reporting revisions from the start, grouped by work item id.

        The feed is one continuation-token chain, so read as is it costs one round trip per page
        however many requests may be in flight. After the first page the rest of the timeline
        (first page's last change .. now) is cut into slices read side by side: each slice
        starts at its ``startDateTime`` and stops past the next slice's start; the first goes on
        from the first page's token and the last reads to the end. Revisions are de-duplicated
        by (id, rev), so overlaps cost nothing; a revision a slice missed (a feed not in time
        order) leaves its item's history incomplete, which sends that item to ``/updates``.

        Returns None (every item then falls back to /updates) when a page is malformed.
        """
        path = f"/{self._project_path}/_apis/wit/reporting/workitemrevisions"
        fields = [F_STATE, F_CHANGED, F_TYPE, F_BLOCKED]
        if self.config.fields.flagged and self.config.fields.flagged not in fields:
            fields.append(self.config.fields.flagged)
        wanted = ",".join(fields)
        first = await self._feed_page(path, wanted, run, token=None, start=None)
        if first is None:
            return None
        values, token, last = first
        slices = self.config.concurrency * FEED_SLICES_PER_SLOT
        if last or not token:
            return _group_revisions([values])
        lower = max((t for t in map(_changed, values) if t is not None), default=None)
        if self.config.concurrency <= 1 or len(values) < FEED_SLICE_MIN or lower is None:
            rest = await self._feed_stream(path, wanted, run, token=token, start=None, stop=None)
            return None if rest is None else _group_revisions([values, rest])
        upper = max(datetime.now(UTC), lower + timedelta(seconds=slices))
        earliest = min((t for t in map(_changed, values) if t is not None), default=lower)
        if lower > earliest:  # no more slices than pages left (at the first page's density)
            pages_left = (upper - lower) / (lower - earliest)
            slices = max(1, min(slices, math.ceil(pages_left)))
        step = (upper - lower) / slices
        cuts = sorted(
            {(lower + step * k).replace(microsecond=0) for k in range(1, slices)} - {lower}
        )
        bounds: list[datetime | None] = [*cuts, None]
        streams = [self._feed_stream(path, wanted, run, token=token, start=None, stop=bounds[0])]
        streams += [
            self._feed_stream(path, wanted, run, token=None, start=a, stop=b)
            for a, b in zip(cuts, bounds[1:], strict=True)
        ]
        parts = await asyncio.gather(*streams)
        if any(part is None for part in parts):
            return None
        return _group_revisions([values, *(p for p in parts if p is not None)])

    async def _feed_page(
        self, path: str, wanted: str, run: _Run, *, token: str | None, start: datetime | None
    ) -> tuple[list[dict[str, Any]], str | None, bool] | None:
        params: dict[str, Any] = {"fields": wanted}
        if token:
            params["continuationToken"] = token
        elif start is not None:
            params["startDateTime"] = wiql_time(start)
        try:
            page: RevisionsBatch = await self._answer(
                "GET", path, RevisionsBatch, run, params=params
            )
        except MalformedAnswer as exc:
            run.problems.append(f"{exc}; history read per item instead")
            return None
        values: list[dict[str, Any]] = [dict(r) for r in page["values"]]
        next_token = page.get("continuationToken")
        last = page.get("isLastBatch", True)
        if next_token == token:
            last = True
        return values, (str(next_token) if next_token else None), bool(last)

    async def _feed_stream(
        self,
        path: str,
        wanted: str,
        run: _Run,
        *,
        token: str | None,
        start: datetime | None,
        stop: datetime | None,
    ) -> list[dict[str, Any]] | None:
        """Feed pages from ``token`` or ``start`` until the end, or until changes pass ``stop``
        (revisions after ``stop`` are left to the next slice)."""
        out: list[dict[str, Any]] = []
        while True:
            page = await self._feed_page(path, wanted, run, token=token, start=start)
            if page is None:
                return None
            values, token, last = page
            if stop is None:
                out += values
            else:
                times = [_changed(v) for v in values]
                out += [v for v, t in zip(values, times, strict=True) if t is None or t <= stop]
                if any(t is not None and t > stop for t in times):
                    return out
            if last or not token:
                return out

    # -- state categories

    async def _ensure_states(self, types: set[str], run: _Run) -> None:
        """States of each type, read once per run even when chunks ask at the same time."""
        for type_name in types:
            if type_name.lower() not in run.state_tasks:
                run.state_tasks[type_name.lower()] = asyncio.create_task(
                    self._states(type_name, run)
                )
        await asyncio.gather(*(run.state_tasks[t.lower()] for t in types))

    async def _states(self, type_name: str, run: _Run) -> None:
        path = f"/{self._project_path}/_apis/wit/workitemtypes/{quote(type_name, safe='')}/states"
        payload: StatesList | None = None
        try:
            payload = await self._answer("GET", path, StatesList, run)
        except TrackerError as exc:  # a wrong-shaped answer (MalformedAnswer) fails the run
            if exc.status != 404 or isinstance(exc, MalformedAnswer):
                raise
            run.problems.append(
                f"work item type {type_name!r}: no states found (HTTP 404); its states are "
                f"counted by their names"
            )
        run.states[type_name.lower()] = states_to_categories(payload)

    # -- levels

    async def _type_levels(self) -> dict[str, str]:
        """Type name (lower) -> level from the work item type categories and the process's
        portfolio backlogs, read once per run; a server without either (404) gives none."""

        async def read(path: str, shape: Any) -> Any:
            try:
                return await self._answer("GET", f"/{self._project_path}{path}", shape, None)
            except TrackerError as exc:
                if exc.status == 404 and not isinstance(exc, MalformedAnswer):
                    return None
                raise

        categories, process = await _all(
            read("/_apis/wit/workitemtypecategories", CategoryList),
            read("/_apis/work/processconfiguration", ProcessConfiguration),
        )
        return categories_to_levels(categories, process)

    # -- sprints

    async def _sprints(self, run: _Run) -> list[SprintRow]:
        teams = await self._teams(run)
        ctx = AdoContext.from_config(self.config)
        per_team = await asyncio.gather(*(self._team_iterations(t, ctx, run) for t in teams))
        return merge_sprints(per_team)

    async def _teams(self, run: _Run) -> list[str]:
        path = f"/_apis/projects/{self._project_path}/teams"
        names: list[str] = []
        skip = 0
        while True:
            page: TeamsPage = await self._answer(
                "GET", path, TeamsPage, run, params={"$top": 100, "$skip": skip}
            )
            values = page["value"]
            names += [str(t["name"]) for t in values if t["name"]]
            if len(values) < 100:
                return names
            skip += len(values)

    async def _team_iterations(self, team: str, ctx: AdoContext, run: _Run) -> list[SprintRow]:
        path = f"/{self._project_path}/{quote(team, safe='')}/_apis/work/teamsettings/iterations"
        try:
            payload: TeamIterations = await self._answer("GET", path, TeamIterations, run)
        except TrackerError as exc:  # a wrong-shaped answer (MalformedAnswer) fails the run
            if exc.status == 404 and not isinstance(exc, MalformedAnswer):
                return []
            raise
        try:
            return map_team_iterations(team, payload, ctx, run.problems)
        except (TypeError, ValueError) as exc:
            run.problems.append(f"iterations of team {team!r}: unreadable ({exc}); skipped")
            return []
