"""The shapes of the Jira answers the connector reads: validate before acting.

Each answer is decoded by ``TrackerClient.answer`` straight from the raw bytes into one of these
``TypedDict`` shapes (msgspec decodes and validates in one pass), so the mapping code still works
on plain dicts but never sees a page of the wrong shape: ``200 {"errorMessages": ["maintenance"]}``
where a page of issues was expected, or issues that are strings, is asked for again and then fails
the run with ``MalformedAnswer`` naming the endpoint and what did not fit.

Only the fields the connector uses are described, and only the ones it cannot do without are
``Required``; the fields a shape does not describe are skipped while decoding (the decoder never
builds them, so the mapping can only read what is described here). An issue's ``fields`` object
stays free-form: ``map_issue`` reads every field on its own and reports a field of an unexpected
type as a problem line instead of dropping the issue.
"""

from __future__ import annotations

from typing import Any, Required

from typing_extensions import TypedDict

Id = str | int  # Jira sends ids as strings; sprint and a few other ids are numbers


class Myself(TypedDict, total=False):
    """``GET /myself``: only the time zone JQL dates are read in (Jira always sends one for the
    calling user: the profile's, else the site's), so an answer without it is not this endpoint's."""

    timeZone: Required[str | None]


class StatusCategory(TypedDict, total=False):
    key: str | None


class Status(TypedDict, total=False):
    """One entry of ``GET /status`` (and an issue's current ``fields.status``)."""

    id: Id | None
    name: str | None
    statusCategory: StatusCategory | None


StatusList = list[Status]


class IssueType(TypedDict, total=False):
    """One entry of ``GET /issuetype`` (and an issue's ``fields.issuetype``).

    ``hierarchyLevel``: -1 sub-task, 0 standard, 1 epic, 2 and up above epic (Cloud, and the
    Advanced Roadmaps levels); ``subtask`` on both Cloud and Data Center; ``untranslatedName`` is
    the English name on a localised Cloud site.
    """

    id: Id | None
    name: str | None
    untranslatedName: str | None
    hierarchyLevel: int | None
    subtask: bool | None


IssueTypeList = list[IssueType]


class IdRef(TypedDict):
    id: Id


class IdsPage(TypedDict, total=False):
    """``POST /rest/api/3/search/jql`` asked for ids only."""

    issues: Required[list[IdRef]]
    nextPageToken: str | None
    isLast: bool | None


class ChangeItem(TypedDict, total=False):
    field: str | None
    fieldId: str | None
    fromString: str | None
    toString: str | None


class History(TypedDict, total=False):
    """One changelog entry (Cloud bulkfetch, DC ``expand=changelog``)."""

    id: Id | None
    created: str | int | float | None
    items: Required[list[ChangeItem]]


class Changelog(TypedDict, total=False):
    """An issue's ``changelog`` under ``expand=changelog``; ``total`` may exceed what came."""

    startAt: int | None
    maxResults: int | None
    total: int | None
    histories: list[History]


class FullChangelog(TypedDict, total=False):
    startAt: int | None
    maxResults: int | None
    total: int | None
    histories: Required[list[History]]


class Issue(TypedDict, total=False):
    """An issue as bulkfetch and DC search return it: its id and a ``fields`` object."""

    id: Required[Id]
    key: str | None
    fields: Required[dict[str, Any]]
    changelog: Changelog


class IssuesPage(TypedDict, total=False):
    """``POST /rest/api/3/issue/bulkfetch``."""

    issues: Required[list[Issue]]
    issueErrors: list[Any]


class IssueChangeLog(TypedDict):
    issueId: Id
    changeHistories: list[History]


class ChangelogPage(TypedDict, total=False):
    """``POST /rest/api/3/changelog/bulkfetch``."""

    issueChangeLogs: Required[list[IssueChangeLog]]
    nextPageToken: str | None


class DcIdsPage(TypedDict, total=False):
    """``GET /rest/api/2/search`` asked for ids only."""

    issues: Required[list[IdRef]]
    total: Required[int]
    startAt: int | None
    maxResults: int | None


class DcSearchPage(TypedDict, total=False):
    """``GET /rest/api/2/search`` with fields and ``expand=changelog``."""

    issues: Required[list[Issue]]
    total: Required[int]
    startAt: int | None
    maxResults: int | None


class IssueWithChangelog(TypedDict, total=False):
    """``GET /issue/{id}?expand=changelog``: the complete history of one issue."""

    id: Id
    changelog: Required[FullChangelog]


class RemoteObject(TypedDict, total=False):
    url: str | None


class RemoteLink(TypedDict, total=False):
    """One entry of ``GET /issue/{id}/remotelink``."""

    id: Id | None
    relationship: str | None
    object: RemoteObject | None


RemoteLinkList = list[RemoteLink]


class Sprint(TypedDict, total=False):
    id: Required[Id]
    name: str | None
    state: str | None
    startDate: str | None
    endDate: str | None
    completeDate: str | None
    originBoardId: Id | None


class SprintPage(TypedDict, total=False):
    """``GET /rest/agile/1.0/board/{id}/sprint``."""

    values: Required[list[Sprint]]
    isLast: bool | None
    startAt: int | None
    maxResults: int | None
