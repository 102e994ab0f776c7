"""Azure DevOps Services (REST 7.1) over the synthetic portfolio.

WIQL (ids only, with the real 20,000 result cap), ``workitemsbatch`` (at most 200 ids, relations
on both ends), work item types and their states (with custom states), work item type categories
and the process configuration (backlog levels), the reporting revisions feed (continuation
tokens), per-item updates, teams, team iterations and team field values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import numpy as np

from pmolens.simulator.portfolio import (
    ADO_PROJECT,
    ADO_TYPES,
    DAY,
    EPIC,
    FEATURE,
    IMPEDIMENT,
    L_BLOCKS,
    L_CHAIN,
    L_DEPENDENCY,
    L_DUPLICATE,
    L_RELATES,
    LABELS,
    STATUS_INDEX,
    STATUSES,
    STORY,
    TASK,
    Portfolio,
    ado_time,
    day_text,
)
from pmolens.simulator.protocol import Call, HttpError, RawJson, Reply, json_bytes
from pmolens.simulator.query import QueryParser

API_VERSION = "7.1"
PROJECT_ID = "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c"
WIQL_CAP = 20_000
BATCH_MAX = 200
FEED_PAGE = 1000
UPDATES_PAGE = 200
# API resource locations served (id, area, resource, route template, resource version), as the
# azure-devops SDK 7.1 knows them; its Connection asks ResourceAreas for the wit area's URL
LOCATIONS = (
    (
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        1,
    ),
    (
        "1a9c53f7-f243-4447-b110-35ef023636e4",
        "wit",
        "wiql",
        "{project}/{team}/_apis/{area}/{resource}/{id}",
        2,
    ),
    (
        "908509b6-4248-4475-a1cd-829139ba419f",
        "wit",
        "workItemsBatch",
        "{project}/_apis/{area}/{resource}",
        1,
    ),
    (
        "72c7ddf8-2cdc-4f60-90cd-ab71c14a399b",
        "wit",
        "workItems",
        "{project}/_apis/{area}/{resource}/{id}",
        3,
    ),
    (
        "6570bf97-d02c-4a91-8d93-3abe9895b1a9",
        "wit",
        "updates",
        "{project}/_apis/{area}/workItems/{id}/{resource}/{updateNumber}",
        3,
    ),
    (
        "a00c85a5-80fa-4565-99c3-bcd2181434bb",
        "wit",
        "revisions",
        "{project}/_apis/{area}/workItems/{id}/{resource}/{revisionNumber}",
        3,
    ),
)
AREAS = (("5264459e-e5e0-4bd8-b118-0985e68a4ec5", "wit"),)
REASONS = {
    "New": "New",
    "Active": "Implementation started",
    "Resolved": "Code complete and unit tests pass",
    "Closed": "Acceptance tests pass",
    "Removed": "Removed from the backlog",
    "Blocked": "Blocked by a dependency",
    "Waiting for Partner": "Waiting for partner delivery",
    "Open": "New",
}
TYPE_STATES = {
    "Epic": ("New", "Active", "Resolved", "Closed", "Removed"),
    "Feature": ("New", "Active", "Resolved", "Closed", "Removed"),
    "User Story": (
        "New",
        "Active",
        "Blocked",
        "Waiting for Partner",
        "Resolved",
        "Closed",
        "Removed",
    ),
    "Bug": ("New", "Active", "Blocked", "Waiting for Partner", "Resolved", "Closed", "Removed"),
    "Task": ("New", "Active", "Blocked", "Waiting for Partner", "Closed", "Removed"),
    "Impediment": ("Open", "Closed"),
}
TYPE_REF = {
    "Epic": "Microsoft.VSTS.WorkItemTypes.Epic",
    "Feature": "Microsoft.VSTS.WorkItemTypes.Feature",
    "User Story": "Microsoft.VSTS.WorkItemTypes.UserStory",
    "Bug": "Microsoft.VSTS.WorkItemTypes.Bug",
    "Task": "Microsoft.VSTS.WorkItemTypes.Task",
    "Impediment": "Microsoft.VSTS.WorkItemTypes.Issue",
}
#: Work item type categories of the simulated Agile process (referenceName, name, types); the
#: Impediment type is in none, as Scrum's Impediment is not: its level comes from its name.
TYPE_CATEGORIES = (
    ("Microsoft.EpicCategory", "Epic Category", ("Epic",)),
    ("Microsoft.FeatureCategory", "Feature Category", ("Feature",)),
    ("Microsoft.RequirementCategory", "Requirement Category", ("User Story",)),
    ("Microsoft.TaskCategory", "Task Category", ("Task",)),
    ("Microsoft.BugCategory", "Bug Category", ("Bug",)),
)
TYPE_COLOR = {
    "Epic": "FF7B00",
    "Feature": "773B93",
    "User Story": "009CCC",
    "Bug": "CC293D",
    "Task": "F2CB1D",
    "Impediment": "B4009E",
}
FEED_FIELDS = (
    "System.Id",
    "System.Rev",
    "System.WorkItemType",
    "System.State",
    "System.Reason",
    "System.Title",
    "System.AreaPath",
    "System.IterationPath",
    "System.AssignedTo",
    "System.CreatedDate",
    "System.ChangedDate",
    "Microsoft.VSTS.CMMI.Blocked",
)
#: The fields pmolens' connector asks of the revisions feed (what ``warm`` renders by default).
CONNECTOR_FEED_FIELDS = (
    "System.State",
    "System.ChangedDate",
    "System.WorkItemType",
    "Microsoft.VSTS.CMMI.Blocked",
)
LIGHT_FIELDS = {
    "system.id",
    "system.rev",
    "system.state",
    "system.reason",
    "system.changeddate",
    "system.areapath",
    "system.workitemtype",
    "microsoft.vsts.cmmi.blocked",
}


def ado_error(status: int, message: str, type_key: str, event_id: int = 3000) -> HttpError:
    """Azure DevOps' error body (the shape of every 4xx it sends as JSON)."""
    return HttpError(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": f"Microsoft.TeamFoundation.WorkItemTracking.Server.{type_key}, "
            "Microsoft.TeamFoundation.WorkItemTracking.Server",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": event_id,
        },
    )


def cap_error(cap: int) -> HttpError:
    return ado_error(
        400,
        f"VS402337: The number of work items returned exceeds the size limit of {cap}. "
        "Change the query to return fewer work items.",
        "WorkItemTrackingQueryResultSizeLimitExceededException",
        3200,
    )


def _guid(*parts: int) -> str:
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part + 17) % (1 << 128)
    text = f"{(value * 0x9E3779B97F4A7C15) % (1 << 128):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# --------------------------------------------------------------------------- WIQL


def _wiql_error(message: str) -> HttpError:
    return ado_error(400, message, "WorkItemTrackingQuerySyntaxException", 3200)


class Wiql(QueryParser):
    """SELECT ... FROM WorkItems [WHERE expr] [ORDER BY ...]: a boolean tree and the sort."""

    TOKEN = re.compile(
        r"\s*(?:(?P<field>\[[^\]]+\])|(?P<str>'(?:[^']|'')*')|(?P<op>>=|<=|<>|=|>|<|\(|\)|,)"
        r"|(?P<macro>@[A-Za-z]+)|(?P<word>[A-Za-z0-9_.\-:]+))"
    )
    WORD_OPERATORS = frozenset({"in", "under"})
    UNEXPECTED = "TF51006: The query statement is not valid near '{near}'."
    EXPECTED = "TF51006: Expecting '{upper}' in the query statement."
    CLOSE = "TF51006: Expecting ')'."
    NO_OPERATOR = "TF51006: Expecting an operator."
    BAD_OPERATOR = "TF51006: Expecting an operator after [{name}]."
    VALUE = "TF51006: Expecting a value."
    OPEN_LIST = "TF51006: Expecting '(' after IN."
    TRAILING = "TF51006: The query statement is not valid near '{token}'."

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.columns: list[str] = []
        self.expect("select")
        self.columns.append(self.sort_field())
        while self.peek() == ("op", ","):
            self.i += 1
            self.columns.append(self.sort_field())
        self.expect("from")
        source = self.peek()
        if source is None or source[1].lower() not in ("workitems",):
            raise _wiql_error("TF51006: The query statement is missing a FROM WorkItems clause.")
        self.i += 1
        if self.is_word("where"):
            self.i += 1
            self.tree = self.disjunction()
        if self.is_word("order"):
            self.i += 1
            self.expect("by")
            self.order = self.order_list()
        self.finish()

    def fail(self, message: str) -> HttpError:
        return _wiql_error(message)

    def clean(self, kind: str, text: str) -> str:
        if kind == "str":
            return text[1:-1].replace("''", "'")
        return text[1:-1].strip() if kind == "field" else text

    def sort_field(self) -> str:
        """A field: ``[Reference.Name]`` or a bare word."""
        tok = self.peek()
        if tok is None or tok[0] not in ("field", "word"):
            raise _wiql_error("TF51006: Expecting a field name.")
        self.i += 1
        return tok[1]

    clause_field = sort_field


def _wiql_time(value: str, precise: bool) -> int:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _wiql_error(f"TF51005: The value '{value}' is not a valid date.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = int(moment.timestamp())
    return ts if precise else ts - ts % DAY  # without timePrecision only the day counts


# --------------------------------------------------------------------------- the tenant


class AdoTenant:
    """The Contoso Azure DevOps organisation with one project, ``Delivery``."""

    def __init__(self, portfolio: Portfolio, position: int, wiql_cap: int = WIQL_CAP) -> None:
        self.p = portfolio
        self.position = position
        self.spec = portfolio.specs[position]
        self.wiql_cap = wiql_cap
        self._feed: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        # Render cache: encoded work items and feed entries of the portfolio version it was made
        # for. A real server renders on many machines at once; this one process would otherwise
        # serialise its rendering and stand in for latency the benchmark does not ask for.
        self._render_version = -1
        self._rendered_items: dict[tuple[int, str, str, tuple[str, ...] | None], bytes] = {}
        self._rendered_feed: dict[tuple[int, int, frozenset[str]], bytes] = {}
        self._revisions: dict[int, list[dict[str, Any]]] = {}
        self._rendered_history: dict[tuple[int, str, int, int, str, str], bytes] = {}
        self._render_state: tuple[np.ndarray, np.ndarray] | None = None  # updated, deleted
        p = portfolio
        lo, hi = p.tenant_range(position)
        self.lo, self.hi = lo, hi
        self.team_ids = [g for g, (pos, _) in enumerate(p.teams) if pos == position]
        mine = np.nonzero((p.l_src >= lo) & (p.l_src < hi))[0]
        ends = np.concatenate([p.l_src[mine], p.l_dst[mine]])
        rows = np.concatenate([mine, mine])
        order = np.argsort(ends, kind="stable")
        self.link_items, self.link_rows = ends[order], rows[order]
        kids = lo + np.nonzero(p.parent[lo:hi] >= 0)[0]
        order = np.argsort(p.parent[kids], kind="stable")
        self.child_parent, self.child_items = p.parent[kids][order], kids[order]
        xo = np.nonzero((p.x_rec >= lo) & (p.x_rec < hi))[0]
        order = np.argsort(p.x_rec[xo], kind="stable")
        self.x_items, self.x_rows = p.x_rec[xo][order], xo[order]
        self.first_person: dict[int, int] = {}
        for k, (team, _, _) in enumerate(p.people):
            self.first_person.setdefault(team, k)

    def routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        return [
            ("POST", "/{project}/_apis/wit/wiql", self.wiql),
            ("POST", "/_apis/wit/workitemsbatch", self.batch),
            ("POST", "/{project}/_apis/wit/workitemsbatch", self.batch),
            ("GET", "/_apis/wit/workitems", self.list_items),
            ("GET", "/{project}/_apis/wit/workitems", self.list_items),
            ("GET", "/_apis/wit/workitems/{wid}", self.get_item),
            ("GET", "/{project}/_apis/wit/workitems/{wid}", self.get_item),
            ("GET", "/{project}/_apis/wit/workitems/{wid}/updates", self.updates),
            ("GET", "/_apis/wit/workitems/{wid}/updates", self.updates),
            ("GET", "/{project}/_apis/wit/workitems/{wid}/revisions", self.item_revisions),
            ("GET", "/_apis/wit/workitems/{wid}/revisions", self.item_revisions),
            # location discovery, as Microsoft's azure-devops SDK does before its first call
            ("OPTIONS", "/_apis", self.locations),
            ("GET", "/_apis/resourceareas", self.resource_areas),
            ("GET", "/_apis/resourceareas/{area}", self.resource_area),
            ("GET", "/{project}/_apis/wit/workitemtypes", self.types),
            ("GET", "/{project}/_apis/wit/workitemtypes/{type}/states", self.states),
            ("GET", "/{project}/_apis/wit/workitemtypecategories", self.categories),
            ("GET", "/{project}/_apis/work/processconfiguration", self.process_configuration),
            ("GET", "/{project}/_apis/wit/reporting/workitemrevisions", self.revisions_feed),
            ("GET", "/_apis/projects", self.projects),
            ("GET", "/_apis/projects/{project}/teams", self.teams),
            ("GET", "/{project}/{team}/_apis/work/teamsettings/iterations", self.iterations),
            ("GET", "/{project}/{team}/_apis/work/teamsettings/teamfieldvalues", self.team_fields),
        ]

    # -- checks and small renderers

    def check(self, call: Call, project: str | None = None) -> None:
        version = call.params.get("api-version") or _accept_version(call)
        if not version:
            raise ado_error(
                400,
                f'No api-version was supplied for the "{call.method}" request. The version must '
                'be supplied either as part of the Accept header (e.g. "application/json; '
                "api-version=1.0\") or as query parameter (e.g. '?api-version=1.0').",
                "VssVersionNotSpecifiedException",
            )
        if project is not None and project.lower() not in (ADO_PROJECT.lower(), PROJECT_ID):
            raise ado_error(
                404,
                f"TF200016: The following project does not exist: {project}. Verify that the "
                "name of the project is correct and that the project exists on the specified "
                "Azure DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            )

    def org(self, call: Call) -> str:
        return call.tenant_base

    def item_url(self, call: Call, nid: int) -> str:
        return f"{self.org(call)}/_apis/wit/workItems/{nid}"

    def live(self, i: int) -> bool:
        return self.lo <= i < self.hi and not bool(self.p.deleted[i])

    def index(self, nid: int) -> int | None:
        return self.p.index_of_native(self.position, nid)

    def identity(self, person: int) -> dict[str, Any] | None:
        if person < 0:
            return None
        _, name, account = self.p.people[person]
        email = name.lower().replace(" ", ".") + "@" + self.spec.email_domain
        guid = _guid(7, person)
        return {
            "displayName": name,
            "url": f"https://spsprodweu5.vssps.visualstudio.com/_apis/Identities/{guid}",
            "id": guid,
            "uniqueName": email,
            "imageUrl": f"https://dev.azure.com/contoso/_api/_common/identityImage?id={guid}",
            "descriptor": f"aad.{account}",
        }

    def team_of(self, i: int) -> str | None:
        t = int(self.p.team[i])
        return self.p.teams[t][1] if t >= 0 else None

    def area(self, i: int) -> str:
        team = self.team_of(i)
        return f"{ADO_PROJECT}\\{team}" if team else ADO_PROJECT

    def iteration(self, i: int) -> str:
        s = int(self.p.sprint[i])
        if s < 0:
            return ADO_PROJECT
        return self.iteration_path(s)

    def iteration_path(self, s: int) -> str:
        team = self.p.teams[int(self.p.s_team[s])][1]
        return f"{ADO_PROJECT}\\{team}\\Sprint {int(self.p.s_number[s])}"

    def type_name(self, i: int) -> str:
        return ADO_TYPES[int(self.p.itype[i])]

    # -- revisions

    def revisions(self, i: int) -> list[dict[str, Any]]:
        """Every revision of item ``i``: rev, time, state code, blocked, area path, what changed."""
        p = self.p
        state = p.initial_status(i)
        blocked: str | None = None
        events = p.events(i)
        moves = [value for _, kind, value, _ in events if kind == "move"]
        area = str(moves[0][0]) if moves else self.area(i)
        revs = [
            {
                "rev": 1,
                "at": int(p.created[i]),
                "state": state,
                "blocked": None,
                "area": area,
                "kind": "create",
            }
        ]
        for at, kind, value, _ in events:
            if kind == "status":
                state = value
            elif kind == "flag_on":
                blocked = "Yes"
            elif kind == "flag_off":
                blocked = "No"
            elif kind == "move":
                area = value[1]
            revs.append(
                {
                    "rev": len(revs) + 1,
                    "at": at,
                    "state": state,
                    "blocked": blocked,
                    "area": area,
                    "kind": kind,
                }
            )
        return revs

    def _feed_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All revisions of live items ordered by (time, item, rev); rebuilt after mutations."""
        p = self.p
        if self._feed is not None and self._feed[0] == p.version:
            return self._feed[1], self._feed[2], self._feed[3]
        lo, hi = self.lo, self.hi
        items = np.arange(lo, hi)
        live = ~p.deleted[lo:hi]
        counts = np.diff(p.hptr[lo : hi + 1])
        parts_t = [p.created[lo:hi], p.htime[p.hptr[lo] : p.hptr[hi]]]
        parts_i = [items, np.repeat(items, counts)]
        parts_k = [np.zeros(hi - lo, np.int64), np.ones(int(counts.sum()), np.int64)]
        for arr, code in ((p.flag_on, 2), (p.flag_off, 3)):
            has = arr[lo:hi] >= 0
            parts_t.append(arr[lo:hi][has])
            parts_i.append(items[has])
            parts_k.append(np.full(int(has.sum()), code, np.int64))
        ex_t, ex_i = [], []
        for i, extra in p.extra.items():
            if lo <= i < hi:
                for at, _, _ in extra:
                    ex_t.append(at)
                    ex_i.append(i)
        parts_t.append(np.array(ex_t, np.int64))
        parts_i.append(np.array(ex_i, np.int64))
        parts_k.append(np.full(len(ex_t), 4, np.int64))
        edit = p.edit_at[lo:hi] >= 0
        parts_t.append(p.edit_at[lo:hi][edit])
        parts_i.append(items[edit])
        parts_k.append(np.full(int(edit.sum()), 5, np.int64))
        t = np.concatenate(parts_t)
        it = np.concatenate(parts_i)
        k = np.concatenate(parts_k)
        seq = np.arange(t.size)
        order = np.lexsort((seq, k, t, it))
        t, it = t[order], it[order]
        starts = np.searchsorted(it, it, side="left")
        rev = np.arange(it.size) - starts + 1
        keep = live[it - lo]
        t, it, rev = t[keep], it[keep], rev[keep]
        order = np.lexsort((rev, it, t))
        t, it, rev = t[order], it[order], rev[order]
        self._feed = (p.version, t, it, rev)
        return t, it, rev

    # -- fields and relations

    def fields(
        self, i: int, rev: dict[str, Any] | None = None, revs: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """All fields of item ``i`` now (or as of revision ``rev``), absent when empty."""
        p = self.p
        revs = revs if revs is not None else self.revisions(i)
        current = revs[-1] if rev is None else rev
        state = STATUSES[int(current["state"])].name
        kind = int(p.itype[i])
        type_name = ADO_TYPES[kind]
        out: dict[str, Any] = {
            "System.Id": int(p.nid[i]),
            "System.AreaPath": current["area"],
            "System.TeamProject": ADO_PROJECT,
            "System.IterationPath": self.iteration(i),
            "System.WorkItemType": type_name,
            "System.State": state,
            "System.Reason": REASONS.get(state, "New") if current["rev"] > 1 else "New",
        }
        assignee = self.identity(int(p.assignee[i]))
        if assignee:
            out["System.AssignedTo"] = assignee
        creator = self.identity(self._creator(i))
        out["System.CreatedDate"] = ado_time(int(p.created[i]))
        if creator:
            out["System.CreatedBy"] = creator
        out["System.ChangedDate"] = ado_time(int(current["at"]))
        if creator:
            out["System.ChangedBy"] = assignee or creator
        out["System.CommentCount"] = 0
        out["System.Title"] = p.title(i)
        out["System.BoardColumn"] = state
        out["System.BoardColumnDone"] = False
        upto = [r for r in revs if r["rev"] <= current["rev"]]
        changed = [r for r in upto if r["kind"] == "status"]
        out["Microsoft.VSTS.Common.StateChangeDate"] = ado_time(
            int(changed[-1]["at"]) if changed else int(p.created[i])
        )
        active = [r for r in changed if STATUSES[int(r["state"])].name == "Active"]
        if active:
            out["Microsoft.VSTS.Common.ActivatedDate"] = ado_time(int(active[0]["at"]))
        if state in ("Resolved", "Closed") and changed:
            resolved = [r for r in changed if STATUSES[int(r["state"])].name == "Resolved"]
            out["Microsoft.VSTS.Common.ResolvedDate"] = ado_time(
                int((resolved or changed)[-1]["at"])
            )
        if state == "Closed" and changed:
            out["Microsoft.VSTS.Common.ClosedDate"] = ado_time(int(changed[-1]["at"]))
        out["Microsoft.VSTS.Common.Priority"] = int(p.priority[i])
        out["Microsoft.VSTS.Common.StackRank"] = float(int(p.rank[i]) * 10 + 1000) + 0.5
        points = float(p.points[i])
        if points == points:  # not NaN
            field = (
                "Microsoft.VSTS.Scheduling.Effort"
                if kind in (EPIC, FEATURE)
                else ("Microsoft.VSTS.Scheduling.StoryPoints")
            )
            out[field] = points
        if kind in (EPIC, FEATURE, STORY):
            out["Microsoft.VSTS.Common.ValueArea"] = "Business"
        for name, arr in (
            ("Microsoft.VSTS.Common.BusinessValue", p.bv),
            ("Microsoft.VSTS.Common.TimeCriticality", p.tc),
            ("Custom.RROEValue", p.rr),
            ("Custom.Cost", p.cost),
        ):
            value = float(arr[i])
            if value == value:
                out[name] = int(value) if name.endswith("BusinessValue") else value
        if int(p.due[i]) >= 0:  # a date field: the user's local midnight, stored in UTC
            out["Microsoft.VSTS.Scheduling.TargetDate"] = day_text(int(p.due[i])) + "T00:00:00Z"
        tags = [LABELS[b] for b in range(len(LABELS)) if int(p.labels[i]) >> b & 1]
        if tags:
            out["System.Tags"] = "; ".join(tags)
        if p.has_desc[i]:
            out["System.Description"] = (
                f"<div>{_html(p.title(i))}: the details agreed with the PO.</div>"
            )
        if p.has_ac[i]:
            out["Microsoft.VSTS.Common.AcceptanceCriteria"] = (
                "<ul><li>Given a customer, when the change is live, then it works.</li></ul>"
            )
        if current["blocked"] is not None:
            out["Microsoft.VSTS.CMMI.Blocked"] = current["blocked"]
        parent = int(p.parent[i])
        if parent >= 0 and self.live(parent):
            out["System.Parent"] = int(p.nid[parent])
        out["System.Rev"] = int(current["rev"])
        return out

    def _creator(self, i: int) -> int:
        return self.first_person.get(int(self.p.team[i]), -1)

    def relations(self, i: int, call: Call) -> list[dict[str, Any]]:
        p = self.p
        out: list[dict[str, Any]] = []

        def rel(name: str, label: str, other: int) -> None:
            out.append(
                {
                    "rel": name,
                    "url": self.item_url(call, int(p.nid[other])),
                    "attributes": {"isLocked": False, "name": label},
                }
            )

        parent = int(p.parent[i])
        if parent >= 0 and self.live(parent):
            rel("System.LinkTypes.Hierarchy-Reverse", "Parent", parent)
        a, b = np.searchsorted(self.child_parent, [i, i + 1])
        for child in self.child_items[a:b].tolist():
            if self.live(child):
                rel("System.LinkTypes.Hierarchy-Forward", "Child", child)
        a, b = np.searchsorted(self.link_items, [i, i + 1])
        for row in self.link_rows[a:b].tolist():
            src, dst, kind = int(p.l_src[row]), int(p.l_dst[row]), int(p.l_type[row])
            mine_is_src = src == i
            other = dst if mine_is_src else src
            if not self.live(other):
                continue
            if kind in (L_BLOCKS, L_CHAIN):  # src blocks dst: dst is src's successor
                if mine_is_src:
                    rel("System.LinkTypes.Dependency-Forward", "Successor", other)
                else:
                    rel("System.LinkTypes.Dependency-Reverse", "Predecessor", other)
            elif kind == L_DEPENDENCY:  # src depends on dst: dst is src's predecessor
                if mine_is_src:
                    rel("System.LinkTypes.Dependency-Reverse", "Predecessor", other)
                else:
                    rel("System.LinkTypes.Dependency-Forward", "Successor", other)
            elif kind == L_RELATES:
                rel("System.LinkTypes.Related", "Related", other)
            elif kind == L_DUPLICATE:  # src is a duplicate of dst
                if mine_is_src:
                    rel("System.LinkTypes.Duplicate-Reverse", "Duplicate Of", other)
                else:
                    rel("System.LinkTypes.Duplicate-Forward", "Duplicate", other)
        a, b = np.searchsorted(self.x_items, [i, i + 1])
        for row in self.x_rows[a:b].tolist():
            other = int(p.x_other[row])
            if p.deleted[other]:
                continue
            spec = p.specs[int(p.tenant[other])]
            when = ado_time(int(p.created[i]))
            out.append(
                {
                    "rel": "Hyperlink",
                    "url": f"{call.base}/{spec.name}/browse/{p.key(other)}",
                    "attributes": {
                        "authorizedDate": when,
                        "id": int(p.x_id[row]),
                        "resourceCreatedDate": when,
                        "resourceModifiedDate": when,
                        "revisedDate": "9999-01-01T00:00:00Z",
                        "comment": "blocks" if bool(p.x_blocks[row]) else "is blocked by",
                        "name": "Hyperlink",
                    },
                }
            )
        if int(p.resolved[i]) >= 0 and int(p.itype[i]) in (STORY, TASK) and int(p.nid[i]) % 4 == 0:
            when = ado_time(int(p.resolved[i]))
            sha = f"{int(p.nid[i]) * 2654435761 % (1 << 64):016x}" * 2 + "0" * 8
            out.append(
                {
                    "rel": "ArtifactLink",
                    "url": f"vstfs:///Git/Commit/{PROJECT_ID}%2F{_guid(1)}%2F{sha}",
                    "attributes": {
                        "authorizedDate": when,
                        "id": int(p.nid[i]) * 10 + 1,
                        "resourceCreatedDate": when,
                        "resourceModifiedDate": when,
                        "revisedDate": "9999-01-01T00:00:00Z",
                        "name": "Fixed in Commit",
                    },
                }
            )
        return out

    def work_item(
        self, i: int, call: Call, expand: str, wanted: list[str] | None
    ) -> dict[str, Any]:
        revs = self.revisions(i)
        fields = self.fields(i, None, revs)
        if wanted is not None:
            lowered = {w.lower() for w in wanted}
            fields = {k: v for k, v in fields.items() if k.lower() in lowered}
        nid = int(self.p.nid[i])
        out: dict[str, Any] = {"id": nid, "rev": len(revs), "fields": fields}
        if expand in ("relations", "all"):
            out["relations"] = self.relations(i, call)
        if expand in ("links", "all"):
            url = self.item_url(call, nid)
            out["_links"] = {
                "self": {"href": url},
                "workItemUpdates": {"href": f"{url}/updates"},
                "workItemRevisions": {"href": f"{url}/revisions"},
                "html": {"href": f"{self.org(call)}/{ADO_PROJECT}/_workitems/edit/{nid}"},
            }
        out["url"] = self.item_url(call, nid)
        return out

    # -- handlers

    def wiql(self, call: Call, project: str) -> Reply:
        self.check(call, project)
        body = call.body if isinstance(call.body, dict) else {}
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise _wiql_error("TF51006: The query statement is empty.")
        parsed = Wiql(query)
        precise = str(call.params.get("timePrecision") or "").lower() == "true"
        p = self.p
        lo, hi = self.lo, self.hi
        mask = ~p.deleted[lo:hi]
        if parsed.tree is not None:
            mask &= self._eval(parsed.tree, precise, project)
        idx = lo + np.nonzero(mask)[0]
        for name, ascending in reversed(parsed.order or [("System.Id", True)]):
            key = name.lower()
            if key == "system.id":
                column = p.nid[idx]
            elif key == "system.changeddate":
                column = p.updated[idx]
            elif key == "system.createddate":
                column = p.created[idx]
            else:
                raise _wiql_error(f"TF51005: The query cannot be sorted by [{name}].")
            order = np.argsort(column if ascending else -column, kind="stable")
            idx = idx[order]
        top_raw = call.params.get("$top")
        top = int(top_raw) if top_raw not in (None, "") else None
        if (top is None or top > self.wiql_cap) and idx.size > self.wiql_cap:
            raise cap_error(self.wiql_cap)
        if top is not None:
            idx = idx[:top]
        org = self.org(call)
        columns = [
            {"referenceName": c, "name": c.rsplit(".", 1)[-1], "url": f"{org}/_apis/wit/fields/{c}"}
            for c in parsed.columns
        ]
        return Reply(
            200,
            {
                "queryType": "flat",
                "queryResultType": "workItem",
                "asOf": ado_time(p.clock),
                "columns": columns,
                "sortColumns": [
                    {
                        "field": {
                            "referenceName": n,
                            "name": n.rsplit(".", 1)[-1],
                            "url": f"{org}/_apis/wit/fields/{n}",
                        },
                        "descending": not asc,
                    }
                    for n, asc in parsed.order
                ],
                "workItems": [
                    {"id": int(nid), "url": self.item_url(call, int(nid))}
                    for nid in p.nid[idx].tolist()
                ],
            },
        )

    def _eval(self, node: Any, precise: bool, project: str) -> np.ndarray:
        p = self.p
        lo, hi = self.lo, self.hi
        if node[0] == "and":
            return self._eval(node[1], precise, project) & self._eval(node[2], precise, project)
        if node[0] == "or":
            return self._eval(node[1], precise, project) | self._eval(node[2], precise, project)
        _, name, op, values = node
        key = name.lower()
        n = hi - lo
        if key == "system.teamproject":
            value = values[0]
            if value.lower() == "@project":
                value = project
            same = value.lower() in (ADO_PROJECT.lower(), PROJECT_ID)
            if op not in ("=", "<>"):
                raise _wiql_error(f"TF51005: Operator {op} is not supported for [{name}].")
            return np.full(n, same if op == "=" else not same)
        if key in ("system.changeddate", "system.createddate"):
            column = (p.updated if key == "system.changeddate" else p.created)[lo:hi]
            if not precise:
                column = column - column % DAY
            moment = _wiql_time(values[0], precise)
            return _compare(column, op, moment, name)
        if key == "system.id":
            column = p.nid[lo:hi]
            if op == "in":
                return np.isin(column, [int(v) for v in values])
            try:
                return _compare(column, op, int(values[0]), name)
            except ValueError:
                raise _wiql_error(f"TF51005: '{values[0]}' is not a work item id.") from None
        if key == "system.areapath":
            target = values[0].lower().strip("\\")
            if op not in ("under", "=", "<>"):
                raise _wiql_error(f"TF51005: Operator {op} is not supported for [{name}].")
            areas = {-1: ADO_PROJECT.lower()}
            for g in self.team_ids:
                areas[g] = f"{ADO_PROJECT}\\{p.teams[g][1]}".lower()
            if op == "under":
                teams = [g for g, a in areas.items() if a == target or a.startswith(target + "\\")]
            else:
                teams = [g for g, a in areas.items() if a == target]
            hits = np.isin(p.team[lo:hi], teams)
            return ~hits if op == "<>" else hits
        if key == "system.workitemtype":
            codes = {v.lower(): k for k, v in ADO_TYPES.items()}
            wanted = [codes.get(v.lower(), -1) for v in values]
            hits = np.isin(p.itype[lo:hi], wanted)
            return ~hits if op == "<>" else hits
        if key == "system.state":
            wanted = [STATUS_INDEX.get(v, -1) for v in values]
            hits = np.isin(p.status[lo:hi], wanted)
            return ~hits if op == "<>" else hits
        raise ado_error(
            400,
            f"TF51005: The query references a field that does not exist. The error is caused "
            f"by «[{name}]».",
            "WorkItemTrackingQueryFieldDoesNotExistException",
            3200,
        )

    def batch(self, call: Call, project: str | None = None) -> Reply:
        self.check(call, project)
        body = call.body if isinstance(call.body, dict) else {}
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            raise ado_error(400, "VS403473: The ids parameter is required.", "ArgumentException")
        if len(ids) > BATCH_MAX:
            raise ado_error(
                400,
                f"VS403474: The number of work items requested ({len(ids)}) exceeds the limit "
                f"of {BATCH_MAX}.",
                "ArgumentOutOfRangeException",
            )
        expand = str(body.get("$expand") or "none").lower()
        wanted = body.get("fields")
        if wanted and expand != "none":
            raise ado_error(
                400,
                "The expand parameter can not be used with the fields parameter.",
                "ConflictingParametersException",
            )
        policy = str(body.get("errorPolicy") or "fail").lower()
        chosen = self._indices(ids, policy)
        parts = [
            b"null" if i is None else self._item_json(i, call, expand, wanted or None)
            for i in chosen
        ]
        return Reply(200, RawJson(b'{"count":%d,"value":[%s]}' % (len(parts), b",".join(parts))))

    def _fresh(self) -> None:
        """Forget what a mutation may have changed since the render cache was made: every
        rendered item (links and neighbours may differ; re-rendered on demand), and the feed
        entries and revisions of the items it touched (history is append-only otherwise)."""
        p = self.p
        if self._render_version == p.version:
            return
        updated, deleted = p.updated[self.lo : self.hi], p.deleted[self.lo : self.hi]
        if self._render_version < 0 or self._render_state is None:
            touched: set[int] | None = None
        else:
            seen_updated, seen_deleted = self._render_state
            moved = (updated != seen_updated) | (deleted != seen_deleted)
            touched = {self.lo + int(k) for k in np.nonzero(moved)[0]}
        self._rendered_items.clear()
        self._rendered_history.clear()  # relations and the identities may differ too
        if touched is None:
            self._rendered_feed.clear()
            self._revisions.clear()
        else:
            for key in [k for k in self._rendered_feed if k[0] in touched]:
                del self._rendered_feed[key]
            for i in touched:
                self._revisions.pop(i, None)
        self._render_state = (updated.copy(), deleted.copy())
        self._render_version = p.version

    def _cached_revisions(self, i: int) -> list[dict[str, Any]]:
        self._fresh()
        revs = self._revisions.get(i)
        if revs is None:
            revs = self._revisions[i] = self.revisions(i)
        return revs

    def _item_json(self, i: int, call: Call, expand: str, wanted: list[str] | None) -> bytes:
        self._fresh()
        key = (i, call.tenant_base, expand, tuple(wanted) if wanted else None)
        data = self._rendered_items.get(key)
        if data is None:
            data = self._rendered_items[key] = json_bytes(self.work_item(i, call, expand, wanted))
        return data

    def warm(self, base: str, fields: list[str] | None = None, history: int = 0) -> int:
        """Render every live item (``$expand=relations``, as the connector and the SDK baseline
        ask) and every feed entry (``fields``, default the connector's history fields) into the
        cache; with ``history``, also the first /updates and /revisions page of that many live
        items in id order (what an SDK baseline reads after its WIQL), so every path a benchmark
        times starts alike."""
        call = Call("GET", "", {}, None, base, f"{base}/{self.spec.name}")
        live = [i for i in range(self.lo, self.hi) if self.live(i)]
        for i in live:
            self._item_json(i, call, "relations", None)
        by_id = sorted(live, key=lambda i: int(self.p.nid[i]))
        for i in by_id[: max(0, int(history))]:
            self._history_page(call, "updates", i)
            self._history_page(call, "revisions", i)
        wanted = fields or list(CONNECTOR_FEED_FIELDS)
        wanted_lower = frozenset({w.lower() for w in wanted} | {"system.id", "system.rev"})
        _, items, revs = self._feed_index()
        for j in range(items.size):
            self._feed_entry(int(items[j]), int(revs[j]), wanted_lower)
        return len(live) + int(items.size) + 2 * min(len(live), max(0, int(history)))

    def list_items(self, call: Call, project: str | None = None) -> Reply:
        self.check(call, project)
        raw = str(call.params.get("ids") or "")
        ids = [x for x in raw.split(",") if x.strip()]
        if not ids:
            raise ado_error(400, "VS403473: The ids parameter is required.", "ArgumentException")
        if len(ids) > BATCH_MAX:
            raise ado_error(
                400,
                f"VS403474: The number of work items requested ({len(ids)}) exceeds the limit "
                f"of {BATCH_MAX}.",
                "ArgumentOutOfRangeException",
            )
        expand = str(call.params.get("$expand") or "none").lower()
        fields = [f for f in str(call.params.get("fields") or "").split(",") if f]
        if fields and expand != "none":
            raise ado_error(
                400,
                "The expand parameter can not be used with the fields parameter.",
                "ConflictingParametersException",
            )
        policy = str(call.params.get("errorPolicy") or "fail").lower()
        return Reply(200, self._items(call, ids, expand, fields or None, policy))

    def _items(
        self, call: Call, ids: list[Any], expand: str, wanted: list[str] | None, policy: str
    ) -> dict[str, Any]:
        values = [
            None if i is None else self.work_item(i, call, expand, wanted)
            for i in self._indices(ids, policy)
        ]
        return {"count": len(values), "value": values}

    def _indices(self, ids: list[Any], policy: str) -> list[int | None]:
        """Portfolio rows of the ids asked for; None for a missing one under errorPolicy=omit."""
        values: list[int | None] = []
        for raw in ids:
            try:
                nid = int(raw)
            except (TypeError, ValueError):
                raise ado_error(
                    400, f"VS403475: '{raw}' is not a valid work item id.", "ArgumentException"
                ) from None
            i = self.index(nid)
            if i is None or not self.live(i):
                if policy == "omit":
                    values.append(None)
                    continue
                raise ado_error(
                    404,
                    f"TF401232: Work item {nid} does not exist, or you do not have permissions "
                    "to read it.",
                    "WorkItemUnauthorizedAccessException",
                    3200,
                )
            values.append(i)
        return values

    def get_item(self, call: Call, wid: str, project: str | None = None) -> Reply:
        self.check(call, project)
        expand = str(call.params.get("$expand") or "none").lower()
        body = self._items(call, [wid], expand, None, "fail")
        return Reply(200, body["value"][0])

    def _history_item(self, call: Call, wid: str, project: str | None) -> int:
        self.check(call, project)
        try:
            i = self.index(int(wid))
        except ValueError:
            i = None
        if i is None or not self.live(i):
            raise ado_error(
                404,
                f"TF401232: Work item {wid} does not exist, or you do not have permissions to "
                "read it.",
                "WorkItemUnauthorizedAccessException",
                3200,
            )
        return i

    def _history_page(self, call: Call, kind: str, i: int) -> Reply:
        """An /updates or /revisions page, encoded once per item and page (render cache, as
        work items are: ``warm`` fills it for every path a benchmark times)."""
        skip = max(0, int(call.params.get("$skip") or 0))
        top = max(1, min(int(call.params.get("$top") or UPDATES_PAGE), UPDATES_PAGE))
        expand = str(call.params.get("$expand") or "none").lower()
        self._fresh()
        key = (i, kind, skip, top, expand, call.tenant_base)
        data = self._rendered_history.get(key)
        if data is None:
            render = self._updates if kind == "updates" else self._revision_values
            page = render(i, call, expand)[skip : skip + top]
            data = json_bytes({"count": len(page), "value": page})
            self._rendered_history[key] = data
        return Reply(200, RawJson(data))

    def updates(self, call: Call, wid: str, project: str | None = None) -> Reply:
        """Per-item updates: deltas (oldValue/newValue) per revision, paged by $top/$skip."""
        return self._history_page(call, "updates", self._history_item(call, wid, project))

    def item_revisions(self, call: Call, wid: str, project: str | None = None) -> Reply:
        """Per-item revisions: the whole work item as it was after each revision, paged by
        $top/$skip (``$expand=relations``: the relations as they are now)."""
        return self._history_page(call, "revisions", self._history_item(call, wid, project))

    def _revision_values(self, i: int, call: Call, expand: str) -> list[dict[str, Any]]:
        revs = self._cached_revisions(i)
        nid = int(self.p.nid[i])
        url = self.item_url(call, nid)
        relations = self.relations(i, call) if expand in ("relations", "all") else None
        values = []
        for rev in revs:
            value: dict[str, Any] = {
                "id": nid,
                "rev": rev["rev"],
                "fields": self.fields(i, rev, revs),
            }
            if relations is not None:
                value["relations"] = relations
            value["url"] = f"{url}/revisions/{rev['rev']}"
            values.append(value)
        return values

    def _updates(self, i: int, call: Call, expand: str) -> list[dict[str, Any]]:
        revs = self.revisions(i)
        url = self.item_url(call, int(self.p.nid[i]))
        values = []
        previous: dict[str, Any] | None = None
        for n, rev in enumerate(revs):
            snapshot = self._history_fields(i, rev)
            if previous is None:
                delta = {k: {"newValue": v} for k, v in self.fields(i, rev, revs).items()}
            else:
                delta = {}
                for name, value in snapshot.items():
                    if previous.get(name) != value:
                        entry: dict[str, Any] = {"newValue": value}
                        if name in previous:
                            entry = {"oldValue": previous[name], "newValue": value}
                        delta[name] = entry
            previous = snapshot
            revised = revs[n + 1]["at"] if n + 1 < len(revs) else None
            person = self.identity(int(self.p.assignee[i])) or self.identity(self._creator(i))
            values.append(
                {
                    "id": n + 1,
                    "workItemId": int(self.p.nid[i]),
                    "rev": rev["rev"],
                    "revisedBy": person,
                    "revisedDate": ado_time(revised) if revised else "9999-01-01T00:00:00Z",
                    "fields": delta,
                    "url": f"{url}/updates/{n + 1}",
                }
            )
        return values

    # -- location discovery (Microsoft's SDKs resolve every route from these)

    def locations(self, call: Call) -> Reply:
        """``OPTIONS /_apis``: the API resource locations, shaped as Azure DevOps answers them
        (``VssJsonCollectionWrapper`` of ``ApiResourceLocation``), for the routes served here."""
        values = [
            {
                "id": location_id,
                "area": area,
                "resourceName": resource,
                "routeTemplate": template,
                "resourceVersion": resource_version,
                "minVersion": "1.0",
                "maxVersion": API_VERSION,
                "releasedVersion": API_VERSION,
            }
            for location_id, area, resource, template, resource_version in LOCATIONS
        ]
        return Reply(200, {"count": len(values), "value": values})

    def _areas(self, call: Call) -> list[dict[str, Any]]:
        org = self.org(call) + "/"
        return [{"id": area_id, "name": name, "locationUrl": org} for area_id, name in AREAS]

    def resource_areas(self, call: Call) -> Reply:
        """``/_apis/ResourceAreas``: where each area lives (all on this organisation's URL)."""
        areas = self._areas(call)
        return Reply(200, {"count": len(areas), "value": areas})

    def resource_area(self, call: Call, area: str) -> Reply:
        for entry in self._areas(call):
            if area.lower() in (entry["id"], entry["name"].lower()):
                return Reply(200, entry)
        raise ado_error(
            404, f"The resource area {area} was not found.", "ResourceAreaNotFoundException"
        )

    def _history_fields(self, i: int, rev: dict[str, Any]) -> dict[str, Any]:
        state = STATUSES[int(rev["state"])].name
        out: dict[str, Any] = {
            "System.Rev": rev["rev"],
            "System.State": state,
            "System.Reason": REASONS.get(state, "New") if rev["rev"] > 1 else "New",
            "System.ChangedDate": ado_time(int(rev["at"])),
            "System.AreaPath": rev["area"],
        }
        if rev["blocked"] is not None:
            out["Microsoft.VSTS.CMMI.Blocked"] = rev["blocked"]
        return out

    def revisions_feed(self, call: Call, project: str) -> Reply:
        """Reporting revisions, oldest change first, 1000 a page; the token resumes later runs."""
        self.check(call, project)
        times, items, revs = self._feed_index()
        p = self.p
        token = call.params.get("continuationToken")
        start = 0
        if token:
            try:
                t_s, nid_s, rev_s = (int(x) for x in str(token).split(";"))
            except ValueError:
                raise ado_error(
                    400,
                    f"VS402347: The continuation token '{token}' is not valid.",
                    "InvalidContinuationTokenException",
                ) from None
            start = self._after(times, items, revs, t_s, nid_s, rev_s)
        elif call.params.get("startDateTime"):
            moment = _wiql_time(str(call.params["startDateTime"]), True)
            start = int(np.searchsorted(times, moment, side="left"))
        size = max(1, min(int(call.params.get("$maxPageSize") or FEED_PAGE), FEED_PAGE))
        end = min(start + size, times.size)
        raw_fields = call.params.get("fields")
        wanted = [f for f in str(raw_fields).split(",") if f] if raw_fields else list(FEED_FIELDS)
        wanted_lower = frozenset({w.lower() for w in wanted} | {"system.id", "system.rev"})
        values = [
            self._feed_entry(int(items[j]), int(revs[j]), wanted_lower) for j in range(start, end)
        ]
        if end > start:
            last = end - 1
            next_token = f"{int(times[last])};{int(p.nid[int(items[last])])};{int(revs[last])}"
        else:
            next_token = str(token) if token else f"{int(p.clock)};0;0"
        is_last = end >= times.size
        link = (
            f"{self.org(call)}/{PROJECT_ID}/_apis/wit/reporting/workItemRevisions?"
            f"continuationToken={quote(next_token)}&api-version={API_VERSION}"
        )
        if raw_fields:
            link += f"&fields={quote(str(raw_fields))}"
        rest = json_bytes(
            {"nextLink": link, "continuationToken": next_token, "isLastBatch": is_last}
        )
        return Reply(200, RawJson(b'{"values":[%s],%s' % (b",".join(values), rest[1:])))

    def _feed_entry(self, i: int, r: int, wanted_lower: frozenset[str]) -> bytes:
        """One feed revision, encoded (render cache)."""
        self._fresh()
        key = (i, r, wanted_lower)
        data = self._rendered_feed.get(key)
        if data is not None:
            return data
        p = self.p
        revs = self._cached_revisions(i)
        rev = revs[r - 1]
        if wanted_lower <= LIGHT_FIELDS:  # the usual history read: skip the full render
            fields = self._history_fields(i, rev)
            fields["System.Id"] = int(p.nid[i])
            fields["System.WorkItemType"] = ADO_TYPES[int(p.itype[i])]
        else:
            fields = self.fields(i, rev, revs)
        entry = {
            "id": int(p.nid[i]),
            "rev": r,
            "fields": {k: v for k, v in fields.items() if k.lower() in wanted_lower},
        }
        data = self._rendered_feed[key] = json_bytes(entry)
        return data

    def _after(
        self, times: np.ndarray, items: np.ndarray, revs: np.ndarray, t: int, nid: int, rev: int
    ) -> int:
        """Position of the first revision ordered after (t, item of nid, rev)."""
        a, b = (int(x) for x in np.searchsorted(times, [t, t + 1]))
        i = self.index(nid) if nid else None
        item = i if i is not None else self.lo + nid - self.spec.id_base
        for j in range(a, b):
            if (int(items[j]), int(revs[j])) > (item, rev):
                return j
        return b

    def types(self, call: Call, project: str) -> Reply:
        self.check(call, project)
        org = self.org(call)
        values = []
        for name in TYPE_STATES:
            values.append(
                {
                    "name": name,
                    "referenceName": TYPE_REF[name],
                    "description": f"Tracks a {name.lower()}.",
                    "color": TYPE_COLOR[name],
                    "icon": {
                        "id": f"icon_{name.lower().replace(' ', '_')}",
                        "url": f"{org}/_apis/wit/workItemIcons/icon?color={TYPE_COLOR[name]}",
                    },
                    "isDisabled": False,
                    "states": self._states(name),
                    "url": f"{org}/{PROJECT_ID}/_apis/wit/workItemTypes/{quote(name)}",
                }
            )
        return Reply(200, {"count": len(values), "value": values})

    def _states(self, type_name: str) -> list[dict[str, Any]]:
        out = []
        for state in TYPE_STATES[type_name]:
            s = STATUSES[STATUS_INDEX[state]]
            category = s.ado_category
            if type_name == "Impediment" and state == "Open":
                category = "InProgress"
            out.append({"name": state, "color": s.color, "category": category})
        return out

    def states(self, call: Call, project: str, type: str) -> Reply:
        self.check(call, project)
        for name in TYPE_STATES:
            if name.lower() == type.lower():
                values = self._states(name)
                return Reply(200, {"count": len(values), "value": values})
        raise ado_error(
            404,
            f"VS402323: Work item type {type} does not exist.",
            "WorkItemTypeNotFoundException",
        )

    def _type_ref(self, call: Call, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "url": f"{self.org(call)}/{PROJECT_ID}/_apis/wit/workItemTypes/{quote(name)}",
        }

    def categories(self, call: Call, project: str) -> Reply:
        self.check(call, project)
        org = self.org(call)
        values = [
            {
                "name": name,
                "referenceName": ref,
                "defaultWorkItemType": self._type_ref(call, types[0]),
                "workItemTypes": [self._type_ref(call, t) for t in types],
                "url": f"{org}/{PROJECT_ID}/_apis/wit/workItemTypeCategories/{ref}",
            }
            for ref, name, types in TYPE_CATEGORIES
        ]
        return Reply(200, {"count": len(values), "value": values})

    def process_configuration(self, call: Call, project: str) -> Reply:
        self.check(call, project)

        def backlog(ref: str, name: str) -> dict[str, Any]:
            types = next(t for r, _, t in TYPE_CATEGORIES if r == ref)
            return {
                "name": name,
                "referenceName": ref,
                "workItemTypes": [self._type_ref(call, t) for t in types],
            }

        return Reply(
            200,
            {
                "taskBacklog": backlog("Microsoft.TaskCategory", "Tasks"),
                "requirementBacklog": backlog("Microsoft.RequirementCategory", "Stories"),
                "portfolioBacklogs": [
                    backlog("Microsoft.EpicCategory", "Epics"),
                    backlog("Microsoft.FeatureCategory", "Features"),
                ],
                "bugWorkItems": backlog("Microsoft.BugCategory", "Bugs"),
                "url": f"{self.org(call)}/{PROJECT_ID}/_apis/work/processconfiguration",
            },
        )

    def projects(self, call: Call) -> Reply:
        self.check(call)
        return Reply(
            200,
            {
                "count": 1,
                "value": [
                    {
                        "id": PROJECT_ID,
                        "name": ADO_PROJECT,
                        "url": f"{self.org(call)}/_apis/projects/{PROJECT_ID}",
                        "state": "wellFormed",
                        "revision": 42,
                        "visibility": "private",
                        "lastUpdateTime": ado_time(self.p.clock),
                    }
                ],
            },
        )

    def team_id(self, name: str) -> str:
        return _guid(3, self.spec.teams.index(name))

    def teams(self, call: Call, project: str) -> Reply:
        self.check(call, project)
        skip = max(0, int(call.params.get("$skip") or 0))
        top = max(1, int(call.params.get("$top") or 100))
        org = self.org(call)
        values = [
            {
                "id": self.team_id(name),
                "name": name,
                "url": f"{org}/_apis/projects/{PROJECT_ID}/teams/{self.team_id(name)}",
                "description": f"The {name} team of Contoso",
                "identityUrl": f"https://spsprodweu5.vssps.visualstudio.com/_apis/Identities/{self.team_id(name)}",
                "projectName": ADO_PROJECT,
                "projectId": PROJECT_ID,
            }
            for name in self.spec.teams
        ][skip : skip + top]
        return Reply(200, {"value": values, "count": len(values)})

    def _team(self, team: str) -> int:
        for g in self.team_ids:
            name = self.p.teams[g][1]
            if team.lower() in (name.lower(), self.team_id(name)):
                return g
        raise ado_error(
            404,
            f"VS800067: The team with id or name '{team}' does not exist.",
            "TeamNotFoundException",
        )

    def iterations(self, call: Call, project: str, team: str) -> Reply:
        self.check(call, project)
        g = self._team(team)
        p = self.p
        frame = str(call.params.get("$timeframe") or "").lower()
        org = self.org(call)
        team_id = self.team_id(p.teams[g][1])
        values = []
        for s in np.nonzero(p.s_team == g)[0].tolist():
            state = p.sprint_state(s)
            time_frame = {"closed": "past", "active": "current", "future": "future"}[state]
            if frame and frame != time_frame:
                continue
            iid = _guid(5, s)
            start = int(p.s_start[s]) - int(p.s_start[s]) % DAY
            finish = int(p.s_end[s]) - int(p.s_end[s]) % DAY
            values.append(
                {
                    "id": iid,
                    "name": f"Sprint {int(p.s_number[s])}",
                    "path": self.iteration_path(s),
                    "attributes": {
                        "startDate": datetime.fromtimestamp(start, UTC).strftime(
                            "%Y-%m-%dT00:00:00Z"
                        ),
                        "finishDate": datetime.fromtimestamp(finish, UTC).strftime(
                            "%Y-%m-%dT00:00:00Z"
                        ),
                        "timeFrame": time_frame,
                    },
                    "url": f"{org}/{PROJECT_ID}/{team_id}/_apis/work/teamsettings/iterations/{iid}",
                }
            )
        return Reply(200, {"count": len(values), "value": values})

    def team_fields(self, call: Call, project: str, team: str) -> Reply:
        self.check(call, project)
        g = self._team(team)
        name = self.p.teams[g][1]
        area = f"{ADO_PROJECT}\\{name}"
        org = self.org(call)
        return Reply(
            200,
            {
                "field": {
                    "referenceName": "System.AreaPath",
                    "url": f"{org}/_apis/wit/fields/System.AreaPath",
                },
                "defaultValue": area,
                "values": [{"value": area, "includeChildren": True}],
                "url": f"{org}/{PROJECT_ID}/{self.team_id(name)}/_apis/work/teamsettings/teamfieldvalues",
            },
        )


# --------------------------------------------------------------------------- helpers


def _compare(column: np.ndarray, op: str, value: int, name: str) -> np.ndarray:
    if op == "=":
        return column == value
    if op == "<>":
        return column != value
    if op == ">=":
        return column >= value
    if op == ">":
        return column > value
    if op == "<=":
        return column <= value
    if op == "<":
        return column < value
    raise _wiql_error(f"TF51005: Operator {op} is not supported for [{name}].")


def _accept_version(call: Call) -> str | None:
    accept = call.headers.get("accept", "")
    match = re.search(r"api-version=([0-9.]+)", accept)
    return match.group(1) if match else None


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["IMPEDIMENT", "WIQL_CAP", "AdoTenant", "cap_error"]
