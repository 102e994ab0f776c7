"""The shapes of the Azure DevOps answers the connector reads: validate before acting.

Each answer is decoded by ``TrackerClient.answer`` straight from the raw bytes into one of these
``TypedDict`` shapes (msgspec decodes and validates in one pass), so the mapping code still works
on plain dicts but never sees an answer of the wrong shape: ``200 {"errorMessages":
["maintenance"]}`` or a gateway's HTML page where a WIQL result was expected is asked for again
and then fails the run with ``MalformedAnswer`` naming the endpoint and what did not fit.

Only the fields the connector uses are described, and only the ones it cannot do without are
``Required``; the fields a shape does not describe are skipped while decoding (the decoder never
builds them, so the mapping can only read what is described here). A work item's ``fields`` and
``relations`` stay free-form: ``map_work_item`` reads every field on its own and reports a value
of an unexpected type as a problem line instead of dropping the item.

The work items of a ``workitemsbatch`` answer are checked one by one (``WORK_ITEM``) after the
envelope (``WorkItemsBatch``) fits, so one unreadable item costs only itself.
"""

from __future__ import annotations

from typing import Any, Required

import msgspec
from typing_extensions import TypedDict


class WorkItemRef(TypedDict, total=False):
    id: Required[int]
    url: str | None


class WiqlResult(TypedDict, total=False):
    """``POST {project}/_apis/wit/wiql``: a flat query answers ``workItems`` (ids only)."""

    workItems: Required[list[WorkItemRef]]
    queryType: str | None
    asOf: str | None


class WorkItem(TypedDict, total=False):
    """One entry of ``workitemsbatch`` (``$expand=relations``); null for an omitted id."""

    id: Required[int]
    rev: int | None
    fields: dict[str, Any]
    relations: Any  # read relation by relation by the mapping, which reports odd ones
    url: str | None


WORK_ITEM = WorkItem | None  # a batch entry: null for an id deleted since the listing


class WorkItemsBatch(TypedDict, total=False):
    """``POST {org}/_apis/wit/workitemsbatch``: the envelope; its items are checked one by one."""

    value: Required[list[msgspec.Raw]]  # kept undecoded until each item is read as ``WORK_ITEM``
    count: int | None


class Revision(TypedDict, total=False):
    """One entry of the reporting revisions feed (a snapshot of the asked-for fields)."""

    id: Required[int]
    rev: int | None
    fields: dict[str, Any] | None


class RevisionsBatch(TypedDict, total=False):
    """``GET {project}/_apis/wit/reporting/workitemrevisions`` (ReportingWorkItemRevisionsBatch)."""

    values: Required[list[Revision]]
    continuationToken: str | None
    isLastBatch: bool | None
    nextLink: str | None


class Update(TypedDict, total=False):
    """One entry of ``workItems/{id}/updates``: field deltas ``{oldValue, newValue}``."""

    id: int | None
    rev: int | None
    workItemId: int | None
    revisedDate: str | None
    fields: dict[str, Any] | None


class UpdatesPage(TypedDict, total=False):
    value: Required[list[Update]]
    count: int | None


class State(TypedDict, total=False):
    """One entry of ``workitemtypes/{type}/states`` (WorkItemStateColor)."""

    name: Required[str]
    category: str | None
    color: str | None


class StatesList(TypedDict, total=False):
    value: Required[list[State]]
    count: int | None


class TypeRef(TypedDict, total=False):
    """WorkItemTypeReference."""

    name: Required[str]
    url: str | None


class Category(TypedDict, total=False):
    """One entry of ``GET {project}/_apis/wit/workitemtypecategories`` (WorkItemTypeCategory)."""

    referenceName: Required[str]
    name: str | None
    defaultWorkItemType: TypeRef | None
    workItemTypes: list[TypeRef]


class CategoryList(TypedDict, total=False):
    value: Required[list[Category]]
    count: int | None


class CategoryConfiguration(TypedDict, total=False):
    """A backlog level of ``processconfiguration`` (CategoryConfiguration)."""

    referenceName: str | None
    name: str | None
    workItemTypes: list[TypeRef]


class ProcessConfiguration(TypedDict, total=False):
    """``GET {project}/_apis/work/processconfiguration``: the process's backlog levels."""

    portfolioBacklogs: Required[list[CategoryConfiguration]]
    requirementBacklog: CategoryConfiguration | None
    taskBacklog: CategoryConfiguration | None
    bugWorkItems: CategoryConfiguration | None


class Team(TypedDict, total=False):
    name: Required[str]
    id: str | None


class TeamsPage(TypedDict, total=False):
    """``GET _apis/projects/{project}/teams``."""

    value: Required[list[Team]]
    count: int | None


class IterationAttributes(TypedDict, total=False):
    startDate: str | None
    finishDate: str | None
    timeFrame: str | None


class Iteration(TypedDict, total=False):
    """TeamSettingsIteration. Microsoft's own sample of the list leaves ``path`` out."""

    id: str | None
    name: str | None
    path: str | None
    attributes: IterationAttributes | None
    url: str | None


class IterationsPage(TypedDict, total=False):
    """``GET {project}/{team}/_apis/work/teamsettings/iterations`` as the service answers it."""

    value: Required[list[Iteration]]
    count: int | None


class IterationsSample(TypedDict, total=False):
    """The same list as Microsoft's REST docs print it (``values``)."""

    values: Required[list[Iteration]]


TeamIterations = IterationsPage | IterationsSample  # two object shapes: decode tries each in turn
