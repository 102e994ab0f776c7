"""What every connector is: a thing that turns a tracker's REST API into canonical batches.

A connector never touches DuckDB and never stores cursors: it is handed the point to resume from
and yields ``Batch`` objects; the warehouse decides what is committed and when.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from pmolens.connectors.http import TrackerClient
from pmolens.warehouse.config import SourceConfig
from pmolens.warehouse.model import Batch


class Connector(Protocol):
    config: SourceConfig

    def fetch(self, since: datetime | None) -> AsyncIterator[Batch]:
        """Items updated at or after ``since`` (all when None), with their links, history, sprints.

        ``since`` is the warehouse cursor (UTC): the max ``updated`` committed by the last sync.
        The connector subtracts its own overlap and handles the tracker's time zone rules.
        """
        ...

    async def live_ids(self) -> set[str]:
        """Native ids of every item currently in scope: the reconciliation pass (ids only)."""
        ...


class ConnectorFactory(Protocol):
    def __call__(self, config: SourceConfig, client: TrackerClient) -> Connector: ...


def make_client(config: SourceConfig, **overrides: object) -> TrackerClient:
    """The HTTP client a source's connector talks through, with the source's auth and limits."""
    from pmolens.connectors.http import BearerAuth, basic_auth

    token = config.token()
    auth = {
        "jira_cloud": lambda: basic_auth(config.email or "", token),
        "jira_dc": lambda: BearerAuth(token),
        "azure_devops": lambda: basic_auth("", token),
    }[config.kind]()
    options: dict[str, object] = {
        "concurrency": config.concurrency,
        "max_retries": config.max_retries,
        "timeout": config.timeout_seconds,
    }
    options.update(overrides)
    return TrackerClient(config.base_url, auth, **options)  # type: ignore[arg-type]


#: Status names (lower case) the heuristic counts as done / to do when the tracker does not say.
DONE_NAMES = frozenset(
    {
        "done",
        "closed",
        "resolved",
        "released",
        "won't do",
        "won't fix",
        "cancelled",
        "canceled",
        "rejected",
        "gereed",
        "klaar",
        "afgerond",
        "gesloten",
        "erledigt",
        "geschlossen",
        "fertig",
        "terminé",
        "fermé",
        "résolu",
    }
)
TODO_NAMES = frozenset(
    {
        "to do",
        "todo",
        "to-do",
        "open",
        "new",
        "backlog",
        "inbox",
        "selected for development",
        "te doen",
        "nieuw",
        "offen",
        "neu",
        "à faire",
        "ouvert",
    }
)


def guess_category(status: str) -> str:
    """A status's category from its name alone: the last resort, always reported.
    Shared by the connectors (Jira and Azure DevOps) so a name means the same everywhere."""
    name = " ".join(status.lower().split())
    if name in DONE_NAMES:
        return "done"
    if name in TODO_NAMES or name.startswith("ready for dev"):
        return "todo"
    return "in_progress"
