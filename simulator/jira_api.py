"""Jira Cloud (REST v3) and Jira Data Center (REST v2) over the synthetic portfolio.

Only what pmolens' connectors use, shaped as Atlassian documents it: JQL search (Cloud
``search/jql`` with ``nextPageToken``; DC ``search`` with ``startAt``), issue and changelog bulk
fetch, per-issue changelog and remote links, statuses, ``myself`` and the Agile board/sprint API.
Every payload is rendered on request from the portfolio's arrays.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from pmolens.simulator.portfolio import (
    BUG,
    EPIC,
    JIRA_LINK_TYPES,
    JIRA_PRIORITIES,
    JIRA_TYPES,
    LABELS,
    STATUSES,
    SUBTASK,
    WORKFLOWS,
    Portfolio,
    day_text,
    jira_time,
)
from pmolens.simulator.protocol import Call, HttpError, Reply
from pmolens.simulator.query import QueryParser

USER_TZ = "Europe/Amsterdam"
FLAG_OPTION = {"value": "Impediment", "id": "10019"}
CATEGORY_OBJECTS = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


def jira_error(status: int, *messages: str) -> HttpError:
    return HttpError(status, {"errorMessages": list(messages), "errors": {}})


# --------------------------------------------------------------------------- JQL


class Jql(QueryParser):
    """A parsed query: a boolean tree of clauses plus the ORDER BY fields."""

    FIELDS = ("project", "updated", "created", "labels", "key", "issuetype", "id")
    SORTABLE = ("created", "key", "id", "updated")
    TOKEN = re.compile(
        r"\s*(?:(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<op>>=|<=|!=|=|>|<|\(|\)|,)"
        r"|(?P<word>[A-Za-z0-9_.\-/:+]+))"
    )
    UNEXPECTED = "Error in the JQL Query: unexpected character at {pos}."
    EXPECTED = "Error in the JQL Query: expected '{word}'."
    CLOSE = "Error in the JQL Query: expecting ')'."
    NO_OPERATOR = BAD_OPERATOR = "Error in the JQL Query: expecting an operator after '{name}'."
    VALUE = "Error in the JQL Query: expecting a value."
    OPEN_LIST = "Error in the JQL Query: expecting '(' after 'in'."
    TRAILING = "Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{token}'."

    def __init__(self, text: str) -> None:
        super().__init__(text)
        if self.tokens and not self.is_word("order"):
            self.tree = self.disjunction()
        if self.is_word("order"):
            self.i += 1
            self.expect("by")
            self.order = self.order_list()
        self.finish()

    def fail(self, message: str) -> HttpError:
        return jira_error(400, message)

    def clean(self, kind: str, text: str) -> str:
        return text[1:-1] if kind == "str" else text

    def clause_field(self) -> str:
        tok = self.peek()
        if tok is None or tok[0] != "word":
            raise jira_error(400, "Error in the JQL Query: expecting a field name.")
        if tok[1].lower() not in self.FIELDS:
            raise jira_error(
                400, f"Field '{tok[1]}' does not exist or you do not have permission to view it."
            )
        self.i += 1
        return tok[1].lower()

    def sort_field(self) -> str:
        tok = self.peek()
        if tok is None or tok[0] != "word":
            raise jira_error(400, "Error in the JQL Query: expecting a field to order by.")
        if tok[1].lower() not in self.SORTABLE:
            raise jira_error(400, f"Field '{tok[1]}' does not support sorting in this API.")
        self.i += 1
        return tok[1].lower()


def _jql_time(value: str, tz: ZoneInfo) -> int:
    """'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm' or a date, read in the user's time zone."""
    text = value.strip().replace("/", "-")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(text, fmt).replace(tzinfo=tz).timestamp())
        except ValueError:
            continue
    raise jira_error(
        400,
        f"Date value '{value}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
        "e.g. '-5d', '4w 2d'.",
    )


# --------------------------------------------------------------------------- the tenant


Handler = Callable[[Call], Reply]


class JiraTenant:
    """One Jira site (Cloud or DC) of the portfolio."""

    def __init__(self, portfolio: Portfolio, position: int) -> None:
        self.p = portfolio
        self.position = position
        self.spec = portfolio.specs[position]
        self.cloud = self.spec.kind == "jira_cloud"
        self.v = "3" if self.cloud else "2"
        self.tz = ZoneInfo(USER_TZ)
        self._links_version = -1
        self._build_indexes()

    # -- routes

    def routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        v = self.v
        routes: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", f"/rest/api/{v}/myself", self.myself),
            ("GET", f"/rest/api/{v}/status", self.statuses),
            ("GET", f"/rest/api/{v}/issuetype", self.issue_types),
            ("GET", f"/rest/api/{v}/issue/{{key}}", self.get_issue),
            ("GET", f"/rest/api/{v}/issue/{{key}}/remotelink", self.remote_links),
            ("GET", "/rest/agile/1.0/board", self.boards),
            ("GET", "/rest/agile/1.0/board/{board}/sprint", self.board_sprints),
        ]
        # what the vendor SDKs ask first (pycontribs ``jira`` speaks v2 on Cloud as on DC)
        for version in ("2", "3") if self.cloud else ("2",):
            routes += [
                ("GET", f"/rest/api/{version}/serverInfo", self.server_info),
                ("GET", f"/rest/api/{version}/field", self.field_list),
            ]
        if self.cloud:
            routes += [
                ("POST", "/rest/api/3/search/jql", self.search_jql),
                ("GET", "/rest/api/3/search/jql", self.search_jql),
                ("POST", "/rest/api/2/search/jql", self.search_jql),
                ("GET", "/rest/api/2/search/jql", self.search_jql),
                ("GET", "/rest/api/3/search", self.gone),
                ("POST", "/rest/api/3/search", self.gone),
                ("GET", "/rest/api/2/search", self.gone),
                ("POST", "/rest/api/2/search", self.gone),
                ("POST", "/rest/api/3/issue/bulkfetch", self.bulk_issues),
                ("POST", "/rest/api/3/changelog/bulkfetch", self.bulk_changelogs),
                ("GET", "/rest/api/3/issue/{key}/changelog", self.issue_changelog),
            ]
        else:
            routes += [
                ("GET", "/rest/api/2/search", self.search_dc),
                ("POST", "/rest/api/2/search", self.search_dc),
            ]
        return routes

    # -- indexes (links by item)

    def _build_indexes(self) -> None:
        p = self.p
        lo, hi = p.tenant_range(self.position)
        mine = np.nonzero((p.l_src >= lo) & (p.l_src < hi))[0]
        ends = np.concatenate([p.l_src[mine], p.l_dst[mine]])
        which = np.concatenate([mine, mine])
        order = np.argsort(ends, kind="stable")
        self.link_items = ends[order]
        self.link_rows = which[order]
        xo = np.nonzero((p.x_rec >= lo) & (p.x_rec < hi))[0]
        order = np.argsort(p.x_rec[xo], kind="stable")
        self.x_items = p.x_rec[xo][order]
        self.x_rows = xo[order]
        self.board_ids = [self.spec.board_base + t for t in range(len(self.spec.teams))]
        self.team0 = next(g for g, (pos, _) in enumerate(p.teams) if pos == self.position)
        self.first_person: dict[int, int] = {}
        for k, (team, _, _) in enumerate(p.people):
            self.first_person.setdefault(team, k)

    def _links_of(self, i: int) -> np.ndarray:
        a, b = np.searchsorted(self.link_items, [i, i + 1])
        return self.link_rows[a:b]

    def _remote_of(self, i: int) -> np.ndarray:
        a, b = np.searchsorted(self.x_items, [i, i + 1])
        return self.x_rows[a:b]

    # -- small renderers

    def base(self, call: Call) -> str:
        return call.tenant_base

    def live(self, i: int) -> bool:
        lo, hi = self.p.tenant_range(self.position)
        return lo <= i < hi and not bool(self.p.deleted[i])

    def user(self, person: int, call: Call) -> dict[str, Any] | None:
        if person < 0:
            return None
        _, name, account = self.p.people[person]
        email = name.lower().replace(" ", ".") + "@" + self.spec.email_domain
        b = self.base(call)
        if self.cloud:
            return {
                "self": f"{b}/rest/api/3/user?accountId={account}",
                "accountId": account,
                "emailAddress": email,
                "displayName": name,
                "active": True,
                "timeZone": USER_TZ,
                "accountType": "atlassian",
            }
        username = email.split("@")[0]
        return {
            "self": f"{b}/rest/api/2/user?username={username}",
            "name": username,
            "key": f"JIRAUSER{10000 + person}",
            "emailAddress": email,
            "displayName": name,
            "active": True,
            "timeZone": USER_TZ,
        }

    def status_obj(self, code: int, call: Call) -> dict[str, Any]:
        s = STATUSES[code]
        b = self.base(call)
        category = dict(CATEGORY_OBJECTS[s.jira_category])
        category["self"] = f"{b}/rest/api/{self.v}/statuscategory/{category['id']}"
        return {
            "self": f"{b}/rest/api/{self.v}/status/{s.jira_id}",
            "description": "",
            "iconUrl": f"{b}/images/icons/statuses/generic.png",
            "name": s.name,
            "id": s.jira_id,
            "statusCategory": category,
        }

    def type_obj(self, i: int, call: Call) -> dict[str, Any]:
        kind = int(self.p.itype[i])
        name, type_id, level = JIRA_TYPES[kind]
        obj: dict[str, Any] = {
            "self": f"{self.base(call)}/rest/api/{self.v}/issuetype/{type_id}",
            "id": type_id,
            "description": "",
            "iconUrl": f"{self.base(call)}/images/icons/issuetypes/{name.lower()}.svg",
            "name": name,
            "subtask": kind == SUBTASK,
        }
        if self.cloud:
            obj["hierarchyLevel"] = level
        return obj

    def priority_obj(self, i: int, call: Call) -> dict[str, Any]:
        name, pid = JIRA_PRIORITIES[int(self.p.priority[i]) - 1]
        return {
            "self": f"{self.base(call)}/rest/api/{self.v}/priority/{pid}",
            "iconUrl": f"{self.base(call)}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": pid,
        }

    def project_obj(self, i: int, call: Call) -> dict[str, Any]:
        code = int(self.p.project[i])
        key, name = self.spec.projects[code]
        pid = str(10000 + 100 * self.position + code)
        return {
            "self": f"{self.base(call)}/rest/api/{self.v}/project/{pid}",
            "id": pid,
            "key": key,
            "name": name,
            "projectTypeKey": "software",
            "simplified": False,
        }

    def issue_ref(self, i: int, call: Call) -> dict[str, Any]:
        """How Jira shows another issue inside a link or parent: id, key and a few fields."""
        nid = str(int(self.p.nid[i]))
        return {
            "id": nid,
            "key": self.p.key(i),
            "self": f"{self.base(call)}/rest/api/{self.v}/issue/{nid}",
            "fields": {
                "summary": self.p.title(i),
                "status": self.status_obj(int(self.p.status[i]), call),
                "priority": self.priority_obj(i, call),
                "issuetype": self.type_obj(i, call),
            },
        }

    def sprint_obj(self, s: int, call: Call) -> dict[str, Any]:
        p = self.p
        state = p.sprint_state(s)
        team = p.teams[int(p.s_team[s])][1]
        obj: dict[str, Any] = {
            "id": int(p.s_native[s]),
            "name": f"{self.spec.projects[0][0]} {team} Sprint {int(p.s_number[s])}",
            "state": state,
            "boardId": self.board_of_sprint(s),
            "goal": f"Sprint goal {team} {int(p.s_number[s])}" if int(p.s_number[s]) % 3 else "",
            "startDate": self.agile_time(int(p.s_start[s])),
            "endDate": self.agile_time(int(p.s_end[s])),
        }
        if state == "closed":
            obj["completeDate"] = self.agile_time(int(p.s_end[s]) + 2 * 3600)
        return obj

    def board_of_sprint(self, s: int) -> int:
        return self.spec.board_base + int(self.p.s_team[s]) - self.team0

    def agile_time(self, ts: int) -> str:
        """Agile API dates: Cloud in UTC ('...000Z'), DC with the server's offset."""
        if self.cloud:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        moment = datetime.fromtimestamp(ts, self.tz)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.000%z")
        return text[:-2] + ":" + text[-2:]

    def dc_sprint_string(self, s: int, call: Call) -> str:
        obj = self.sprint_obj(s, call)
        complete = obj.get("completeDate") or "<null>"
        return (
            f"com.atlassian.greenhopper.service.sprint.Sprint@{int(self.p.s_native[s]) * 7919:x}"
            f"[id={obj['id']},rapidViewId={obj['boardId']},state={obj['state'].upper()},"
            f"name={obj['name']},startDate={obj['startDate']},endDate={obj['endDate']},"
            f"completeDate={complete},activatedDate={obj['startDate']},"
            f"sequence={obj['id']},goal={obj['goal']},autoStartStop=false,synced=false]"
        )

    def links(self, i: int, call: Call) -> list[dict[str, Any]]:
        p = self.p
        out = []
        for row in self._links_of(i).tolist():
            src, dst = int(p.l_src[row]), int(p.l_dst[row])
            other = dst if src == i else src
            if not self.live(other):
                continue
            type_id, name, inward, outward = JIRA_LINK_TYPES[int(p.l_type[row])]
            lid = str(int(p.l_id[row]))
            entry: dict[str, Any] = {
                "id": lid,
                "self": f"{self.base(call)}/rest/api/{self.v}/issueLink/{lid}",
                "type": {
                    "id": type_id,
                    "name": name,
                    "inward": inward,
                    "outward": outward,
                    "self": f"{self.base(call)}/rest/api/{self.v}/issueLinkType/{type_id}",
                },
            }
            # on the source issue the other end is the outward issue ("src blocks other")
            entry["outwardIssue" if src == i else "inwardIssue"] = self.issue_ref(other, call)
            out.append(entry)
        return out

    # -- fields

    def fields(self, i: int, wanted: list[str] | None, call: Call) -> dict[str, Any]:
        names = self.field_names() if wanted is None else wanted
        out: dict[str, Any] = {}
        render = self._renderers()
        for name in names:
            fn = render.get(name)
            if fn is None:
                continue
            value = fn(i, call)
            if name == "parent" and value is None:
                continue  # Jira leaves the key out when there is no parent
            out[name] = value
        return out

    def field_names(self) -> list[str]:
        return list(self._renderers())

    def _renderers(self) -> dict[str, Callable[[int, Call], Any]]:
        p = self.p

        def num(arr: np.ndarray) -> Callable[[int, Call], Any]:
            def get(i: int, call: Call) -> Any:
                value = float(arr[i])
                return None if math.isnan(value) else value

            return get

        def sprint(i: int, call: Call) -> Any:
            ids = [int(s) for s in (p.prev_sprint[i], p.sprint[i]) if s >= 0]
            if not ids:
                return None
            if self.cloud:
                return [self.sprint_obj(s, call) for s in ids]
            return [self.dc_sprint_string(s, call) for s in ids]

        def parent(i: int, call: Call) -> Any:
            par = int(p.parent[i])
            if par < 0 or not self.live(par):
                return None
            if not self.cloud and int(p.itype[i]) != SUBTASK:
                return None
            return self.issue_ref(par, call)

        def epic_link(i: int, call: Call) -> Any:
            par = int(p.parent[i])
            if par >= 0 and int(p.itype[par]) == EPIC and self.live(par):
                return p.key(par)
            return None

        def description(i: int, call: Call) -> Any:
            if not p.has_desc[i]:
                return None
            text = f"As a user I want to {p.title(i).lower()}, so that the chain runs smoothly."
            if int(p.itype[i]) == BUG:
                text = f"Steps to reproduce: {p.title(i)}. Expected: it works."
            if not self.cloud:
                return text
            return {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
            }

        def team(i: int, call: Call) -> Any:
            t = int(p.team[i])
            if t < 0:
                return None
            name = p.teams[t][1]
            uuid = f"{t + 1:08x}-3f2a-4c1e-9b7d-{(t + 1) * 7919:012x}"
            return {"id": uuid, "name": name, "title": name, "isShared": True, "isVisible": True}

        def flagged(i: int, call: Call) -> Any:
            if int(p.flag_on[i]) >= 0 and int(p.flag_off[i]) < 0:
                return [
                    {"self": f"{self.base(call)}/rest/api/{self.v}/customFieldOption/10019"}
                    | FLAG_OPTION
                ]
            return None

        def components(i: int, call: Call) -> Any:
            if self.cloud or int(p.team[i]) < 0:
                return []
            t = int(p.team[i])
            cid = str(10200 + t)
            return [
                {
                    "self": f"{self.base(call)}/rest/api/2/component/{cid}",
                    "id": cid,
                    "name": p.teams[t][1],
                }
            ]

        def rank(i: int, call: Call) -> Any:
            return "0|i" + _base36(int(p.rank[i]) * 37 + 1296, 5) + ":"

        def resolution(i: int, call: Call) -> Any:
            if int(p.resolved[i]) < 0:
                return None
            return {
                "self": f"{self.base(call)}/rest/api/{self.v}/resolution/10000",
                "id": "10000",
                "name": "Done",
                "description": "Work has been completed.",
            }

        renderers: dict[str, Callable[[int, Call], Any]] = {
            "summary": lambda i, c: p.title(i),
            "issuetype": self.type_obj,
            "status": lambda i, c: self.status_obj(int(p.status[i]), c),
            "priority": self.priority_obj,
            "assignee": lambda i, c: self.user(int(p.assignee[i]), c),
            "reporter": lambda i, c: self.user(self._reporter(i), c),
            "created": lambda i, c: jira_time(int(p.created[i]), self.tz),
            "updated": lambda i, c: jira_time(int(p.updated[i]), self.tz),
            "resolutiondate": lambda i, c: (
                jira_time(int(p.resolved[i]), self.tz) if int(p.resolved[i]) >= 0 else None
            ),
            "resolution": resolution,
            "duedate": lambda i, c: day_text(int(p.due[i])) if int(p.due[i]) >= 0 else None,
            "labels": lambda i, c: [
                LABELS[b] for b in range(len(LABELS)) if int(p.labels[i]) >> b & 1
            ],
            "components": components,
            "project": self.project_obj,
            "parent": parent,
            "issuelinks": self.links,
            "description": description,
            "customfield_10016": num(p.points),
            "customfield_10020": sprint,
            "customfield_10019": rank,
            "customfield_10021": flagged,
            "customfield_10030": num(p.bv),
            "customfield_10031": num(p.cost),
            "customfield_10032": num(p.tc),
            "customfield_10033": num(p.rr),
        }
        if self.cloud:
            renderers["customfield_10001"] = team
        else:
            renderers["customfield_10014"] = epic_link
        return renderers

    def _reporter(self, i: int) -> int:
        return self.first_person.get(int(self.p.team[i]), -1)

    def issue(
        self, i: int, wanted: list[str] | None, call: Call, changelog: str | None = None
    ) -> dict[str, Any]:
        """changelog: None (not expanded), "all" (DC) or "capped" (Cloud: first 100)."""
        nid = str(int(self.p.nid[i]))
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": nid,
            "self": f"{self.base(call)}/rest/api/{self.v}/issue/{nid}",
            "key": self.p.key(i),
            "fields": self.fields(i, wanted, call),
        }
        if changelog:
            histories = self.histories(i, call)
            shown = histories if changelog == "all" else histories[:100]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(shown),
                "total": len(histories),
                "histories": shown,
            }
        return out

    def histories(self, i: int, call: Call, epoch: bool = False) -> list[dict[str, Any]]:
        """The changelog of item ``i``, oldest first (status, Flagged, and moves)."""
        p = self.p
        status = p.initial_status(i)
        out = []
        author_person = int(p.assignee[i]) if int(p.assignee[i]) >= 0 else self._reporter(i)
        author = self.user(author_person, call)
        for at, kind, value, hid in p.events(i):
            if kind == "status":
                before, after = STATUSES[status], STATUSES[value]
                items = [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": before.jira_id,
                        "fromString": before.name,
                        "to": after.jira_id,
                        "toString": after.name,
                    }
                ]
                status = value
            elif kind in ("flag_on", "flag_off"):
                on = kind == "flag_on"
                items = [
                    {
                        "field": "Flagged",
                        "fieldtype": "custom",
                        "fieldId": "customfield_10021",
                        "from": None if on else "[10019]",
                        "fromString": None if on else "Impediment",
                        "to": "[10019]" if on else None,
                        "toString": "Impediment" if on else None,
                    }
                ]
            elif kind == "move":
                (old_key, old_project), (new_key, new_project) = value
                items = [
                    {
                        "field": "project",
                        "fieldtype": "jira",
                        "fieldId": "project",
                        "from": old_project[0],
                        "fromString": old_project[1],
                        "to": new_project[0],
                        "toString": new_project[1],
                    },
                    {
                        "field": "Key",
                        "fieldtype": "jira",
                        "from": None,
                        "fromString": old_key,
                        "to": None,
                        "toString": new_key,
                    },
                ]
            else:
                continue
            if not self.cloud:
                for item in items:
                    item.pop("fieldId", None)
            out.append(
                {
                    "id": str(hid),
                    "author": author,
                    "created": at if epoch else jira_time(at, self.tz),
                    "items": items,
                }
            )
        return out

    # -- search

    def query(self, jql: str) -> np.ndarray:
        """Item indices matching the JQL, in its order."""
        p = self.p
        parsed = Jql(jql)
        lo, hi = p.tenant_range(self.position)
        mask = ~p.deleted[lo:hi]
        if parsed.tree is not None:
            mask &= self._eval(parsed.tree, lo, hi)
        idx = lo + np.nonzero(mask)[0]
        if parsed.order:
            keys = []
            for name, ascending in reversed(parsed.order):
                if name in ("created", "id", "key"):
                    column = idx.astype(np.int64)  # creation order = id order
                else:
                    column = p.updated[idx]
                keys.append(column if ascending else -column)
            idx = idx[np.lexsort(keys)]
        return idx

    def _eval(self, node: Any, lo: int, hi: int) -> np.ndarray:
        p = self.p
        if node[0] == "and":
            return self._eval(node[1], lo, hi) & self._eval(node[2], lo, hi)
        if node[0] == "or":
            return self._eval(node[1], lo, hi) | self._eval(node[2], lo, hi)
        _, name, op, values = node
        if name == "project":
            keys = [k for k, _ in self.spec.projects]
            codes = []
            for value in values:
                if value.upper() not in keys:
                    raise jira_error(
                        400, f"The value '{value}' does not exist for the field 'project'."
                    )
                codes.append(keys.index(value.upper()))
            return self._match(p.project[lo:hi], codes, op, name)
        if name == "labels":
            bits = [1 << LABELS.index(v) if v in LABELS else 0 for v in values]
            hits = np.zeros(hi - lo, dtype=bool)
            for bit in bits:
                hits |= (p.labels[lo:hi] & bit) != 0
            if op in ("=", "in"):
                return hits
            raise jira_error(400, f"The operator '{op}' is not supported by the 'labels' field.")
        if name in ("updated", "created"):
            column = (p.updated if name == "updated" else p.created)[lo:hi]
            moment = _jql_time(values[0], self.tz)
            ops: dict[str, Callable[[], np.ndarray]] = {
                ">=": lambda: column >= moment,
                ">": lambda: column >= moment + 60,  # minute precision
                "<=": lambda: column < moment + 60,
                "<": lambda: column < moment,
            }
            if op not in ops:
                raise jira_error(
                    400, f"The operator '{op}' is not supported by the '{name}' field."
                )
            return ops[op]()
        if name == "issuetype":
            names = {JIRA_TYPES[k][0].lower(): k for k in JIRA_TYPES}
            codes = [names.get(v.lower(), -99) for v in values]
            return self._match(p.itype[lo:hi], codes, op, name)
        if name == "key":
            found = [self.p.index_of_key(self.position, v.upper()) for v in values]
            codes = [f - lo for f in found if f is not None]
            return self._match(np.arange(hi - lo), codes, op, name)
        # id
        try:
            ids = [int(v) for v in values]
        except ValueError:
            raise jira_error(400, "The issue id must be a number.") from None
        column = p.nid[lo:hi]
        if op in (">", ">=", "<", "<="):
            return {
                ">": column > ids[0],
                ">=": column >= ids[0],
                "<": column < ids[0],
                "<=": column <= ids[0],
            }[op]
        return self._match(column, ids, op, name)

    @staticmethod
    def _match(column: np.ndarray, codes: list[int], op: str, name: str) -> np.ndarray:
        hits = np.isin(column, codes)
        if op in ("=", "in"):
            return hits
        if op == "!=":
            return ~hits
        raise jira_error(400, f"The operator '{op}' is not supported by the '{name}' field.")

    def _wanted(self, raw: Any, default: list[str] | None) -> list[str] | None:
        """fields parameter (list or comma text) -> names; None = every field."""
        if raw is None or raw == "" or raw == []:
            return default
        names = raw if isinstance(raw, list) else str(raw).split(",")
        names = [str(n).strip() for n in names if str(n).strip()]
        if any(n in ("*all", "*navigable") for n in names):
            return None
        return [n for n in names if not n.startswith("-")]

    # -- handlers

    def myself(self, call: Call) -> Reply:
        b = self.base(call)
        if self.cloud:
            body: dict[str, Any] = {
                "self": f"{b}/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5",
                "accountId": "5b10ac8d82e05b22cc7d4ef5",
                "accountType": "atlassian",
                "emailAddress": f"pmo@{self.spec.email_domain}",
                "displayName": f"{self.spec.organisation} PMO",
                "active": True,
                "timeZone": USER_TZ,
                "locale": "en_US",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
                "expand": "groups,applicationRoles",
            }
        else:
            body = {
                "self": f"{b}/rest/api/2/user?username=pmo",
                "key": "JIRAUSER10000",
                "name": "pmo",
                "emailAddress": f"pmo@{self.spec.email_domain}",
                "displayName": f"{self.spec.organisation} PMO",
                "active": True,
                "deleted": False,
                "timeZone": USER_TZ,
                "locale": "en_GB",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
                "expand": "groups,applicationRoles",
            }
        return Reply(200, body)

    def statuses(self, call: Call) -> Reply:
        p = self.p
        lo, hi = p.tenant_range(self.position)
        wfs = np.unique(p.wf[lo:hi]).tolist()
        codes = sorted({c for w in wfs for c in WORKFLOWS[w]} | {4})
        return Reply(200, [self.status_obj(c, call) for c in codes])

    def issue_types(self, call: Call) -> Reply:
        """``/issuetype``: every type of the site, shaped as on the issues (Cloud: with levels)."""
        b = self.base(call)
        types = []
        for kind, (name, type_id, level) in sorted(JIRA_TYPES.items(), key=lambda t: t[1][1]):
            obj: dict[str, Any] = {
                "self": f"{b}/rest/api/{self.v}/issuetype/{type_id}",
                "id": type_id,
                "description": "",
                "iconUrl": f"{b}/images/icons/issuetypes/{name.lower()}.svg",
                "name": name,
                "subtask": kind == SUBTASK,
            }
            if self.cloud:
                obj["untranslatedName"] = name
                obj["hierarchyLevel"] = level
            types.append(obj)
        return Reply(200, types)

    def server_info(self, call: Call) -> Reply:
        """``/serverInfo`` as Atlassian documents it; the SDKs read ``deploymentType`` (Cloud
        pages by ``nextPageToken``, Server/DC by ``startAt``) and ``versionNumbers``."""
        body: dict[str, Any] = {
            "baseUrl": call.tenant_base,
            "buildDate": "2026-11-20T00:00:00.000+0000",
            "serverTime": jira_time(int(self.p.clock), self.tz),
            "scmInfo": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "serverTitle": f"{self.spec.organisation} Jira",
            "defaultLocale": {"locale": "en_US" if self.cloud else "en_GB"},
        }
        if self.cloud:
            body |= {
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100290,
                "serverTimeZone": "Etc/UTC",
            }
        else:
            body |= {
                "version": "9.12.15",
                "versionNumbers": [9, 12, 15],
                "deploymentType": "Server",
                "buildNumber": 9120015,
                "databaseBuildNumber": 9120015,
            }
        return Reply(200, body)

    def field_list(self, call: Call) -> Reply:
        """``/field``: every field the issues carry, with its JQL clause names and schema."""
        out = []
        for field_id in self.field_names():
            name, schema = FIELD_META.get(field_id, (field_id, {"type": "string"}))
            custom = field_id.startswith("customfield_")
            entry: dict[str, Any] = {
                "id": field_id,
                "name": name,
                "custom": custom,
                "orderable": field_id not in ("created", "updated", "resolutiondate", "status"),
                "navigable": True,
                "searchable": True,
                "clauseNames": ([f"cf[{field_id.split('_')[1]}]", name] if custom else [field_id]),
                "schema": dict(schema),
            }
            if custom:
                entry["schema"]["customId"] = int(field_id.split("_")[1])
            if self.cloud:
                entry["key"] = field_id
                entry["untranslatedName"] = name
            out.append(entry)
        return Reply(200, out)

    def gone(self, call: Call) -> Reply:
        raise jira_error(410, SEARCH_GONE)

    def search_jql(self, call: Call) -> Reply:
        """Cloud ``/search/jql``: ``nextPageToken`` pages; 5000 a page when only ids are asked."""
        body = call.body if call.method == "POST" else dict(call.params)
        if not isinstance(body, dict):
            raise jira_error(400, "Request body must be a JSON object.")
        jql = str(body.get("jql") or "")
        wanted = self._wanted(body.get("fields"), ["id"])
        ids_only = wanted is not None and set(wanted) <= {"id", "key"}
        cap = 5000 if ids_only else 100
        size = _int(body.get("maxResults"), 50, "maxResults")
        size = max(1, min(size, cap))
        idx = self.query(jql)
        start = 0
        token = body.get("nextPageToken")
        if token:
            state = _untoken(str(token))
            if state.get("q") != _digest(jql):
                raise jira_error(400, "The provided next page token is invalid or expired.")
            start = int(state["o"])
        page = idx[start : start + size]
        expand = str(body.get("expand") or "")
        changelog = "capped" if "changelog" in expand else None
        v2 = call.path.startswith("/rest/api/2/")
        issues = []
        for i in page.tolist():
            if ids_only:
                issues.append(
                    {"id": str(int(self.p.nid[i])), "key": self.p.key(i), "fields": {}}
                    if "key" in (wanted or [])
                    else {"id": str(int(self.p.nid[i]))}
                )
            else:
                issue = self.issue(i, wanted, call, changelog)
                issue.pop("expand", None)
                if v2:
                    _as_v2(issue)
                issues.append(issue)
        end = start + len(page)
        out: dict[str, Any] = {"issues": issues, "isLast": end >= len(idx)}
        if end < len(idx):
            out["nextPageToken"] = _token({"o": end, "q": _digest(jql)})
        return Reply(200, out)

    def search_dc(self, call: Call) -> Reply:
        """DC ``/search``: ``startAt`` pages of up to 1000; ``expand=changelog`` is complete."""
        source = call.body if call.method == "POST" and isinstance(call.body, dict) else call.params
        jql = str(source.get("jql") or "")
        start = max(0, _int(source.get("startAt"), 0, "startAt"))
        size = max(0, min(_int(source.get("maxResults"), 50, "maxResults"), 1000))
        wanted = self._wanted(source.get("fields"), None)
        expand = source.get("expand") or ""
        expand = ",".join(expand) if isinstance(expand, list) else str(expand)
        idx = self.query(jql)
        page = idx[start : start + size]
        changelog = "all" if "changelog" in expand else None
        return Reply(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(idx),
                "issues": [self.issue(i, wanted, call, changelog) for i in page.tolist()],
            },
        )

    def _find(self, key: str) -> int:
        i = self.p.index_of_key(self.position, key)
        if i is None or not self.live(i):
            raise jira_error(404, "Issue does not exist or you do not have permission to see it.")
        return i

    def get_issue(self, call: Call, key: str) -> Reply:
        i = self._find(key)
        wanted = self._wanted(call.params.get("fields"), None)
        expand = call.params.get("expand") or ""
        changelog = ("capped" if self.cloud else "all") if "changelog" in expand else None
        return Reply(200, self.issue(i, wanted, call, changelog))

    def bulk_issues(self, call: Call) -> Reply:
        body = call.body if isinstance(call.body, dict) else {}
        keys = body.get("issueIdsOrKeys") or []
        if not isinstance(keys, list) or not keys:
            raise jira_error(400, "issueIdsOrKeys must not be empty.")
        if len(keys) > 100:
            raise jira_error(400, "The number of issues requested exceeds the limit of 100.")
        wanted = self._wanted(body.get("fields"), None)
        issues, errors = [], []
        for key in keys:
            i = self.p.index_of_key(self.position, str(key))
            if i is None or not self.live(i):
                errors.append(
                    {
                        "id": str(key),
                        "errorMessage": "Issue does not exist or you do not "
                        "have permission to see it.",
                    }
                )
                continue
            issues.append(self.issue(i, wanted, call))
        return Reply(200, {"expand": "", "issues": issues, "issueErrors": errors})

    def bulk_changelogs(self, call: Call) -> Reply:
        """Histories of up to 1000 issues, oldest first across the issues, paged by count."""
        body = call.body if isinstance(call.body, dict) else {}
        keys = body.get("issueIdsOrKeys") or []
        if not isinstance(keys, list) or not keys:
            raise jira_error(400, "issueIdsOrKeys must not be empty.")
        if len(keys) > 1000:
            raise jira_error(400, "The number of issues requested exceeds the limit of 1000.")
        field_ids = body.get("fieldIds") or []
        if len(field_ids) > 10:
            raise jira_error(400, "The number of field ids exceeds the limit of 10.")
        size = max(1, min(_int(body.get("maxResults"), 1000, "maxResults"), 10000))
        rows: list[tuple[int, int, str, dict[str, Any]]] = []
        for key in keys:
            i = self.p.index_of_key(self.position, str(key))
            if i is None or not self.live(i):
                continue
            nid = int(self.p.nid[i])
            for history in self.histories(i, call, epoch=True):
                if field_ids:
                    kept = [
                        item
                        for item in history["items"]
                        if item.get("fieldId") in field_ids or item.get("field") in field_ids
                    ]
                    if not kept:
                        continue
                    history = {**history, "items": kept}
                rows.append((int(history["created"]), nid, history["id"], history))
        rows.sort(key=lambda r: (r[0], r[1], int(r[2])))
        start = 0
        token = body.get("nextPageToken")
        if token:
            start = int(_untoken(str(token)).get("o", 0))
        page = rows[start : start + size]
        grouped: dict[int, list[dict[str, Any]]] = {}
        for _, nid, _, history in page:
            grouped.setdefault(nid, []).append(history)
        out: dict[str, Any] = {
            "issueChangeLogs": [
                {"issueId": str(nid), "changeHistories": histories}
                for nid, histories in grouped.items()
            ]
        }
        if start + size < len(rows):
            out["nextPageToken"] = _token({"o": start + size})
        return Reply(200, out)

    def issue_changelog(self, call: Call, key: str) -> Reply:
        i = self._find(key)
        histories = self.histories(i, call)
        start = max(0, _int(call.params.get("startAt"), 0, "startAt"))
        size = max(1, min(_int(call.params.get("maxResults"), 100, "maxResults"), 100))
        page = histories[start : start + size]
        b = f"{self.base(call)}/rest/api/3/issue/{int(self.p.nid[i])}/changelog"
        last = start + len(page) >= len(histories)
        out: dict[str, Any] = {
            "self": f"{b}?maxResults={size}&startAt={start}",
            "maxResults": size,
            "startAt": start,
            "total": len(histories),
            "isLast": last,
            "values": page,
        }
        if not last:
            out["nextPage"] = f"{b}?maxResults={size}&startAt={start + size}"
        return Reply(200, out)

    def remote_links(self, call: Call, key: str) -> Reply:
        """Links to the other organisations' items (the chain), shaped as Jira remote links."""
        i = self._find(key)
        p = self.p
        out = []
        for row in self._remote_of(i).tolist():
            other = int(p.x_other[row])
            if p.deleted[other]:
                continue
            spec = p.specs[int(p.tenant[other])]
            other_base = f"{call.base}/{spec.name}"
            rid = int(p.x_id[row])
            if spec.is_jira:
                url = f"{other_base}/browse/{p.key(other)}"
                app = {"type": "com.atlassian.jira", "name": f"{spec.organisation} Jira"}
                title = p.key(other)
            else:
                url = f"{other_base}/Delivery/_workitems/edit/{int(p.nid[other])}"
                app = {"type": "com.microsoft.azure.devops", "name": "Azure DevOps"}
                title = f"{spec.organisation} {int(p.nid[other])}"
            out.append(
                {
                    "id": rid,
                    "self": f"{self.base(call)}/rest/api/{self.v}/issue/{p.key(i)}/remotelink/{rid}",
                    "globalId": f"system={other_base}&id={int(p.nid[other])}",
                    "application": app,
                    "relationship": "blocks" if bool(p.x_blocks[row]) else "is blocked by",
                    "object": {
                        "url": url,
                        "title": title,
                        "summary": p.title(other),
                        "icon": {"url16x16": f"{other_base}/favicon.ico", "title": app["name"]},
                        "status": {"resolved": p.category(other) == "done", "icon": {}},
                    },
                }
            )
        return Reply(200, out)

    def boards(self, call: Call) -> Reply:
        start = max(0, _int(call.params.get("startAt"), 0, "startAt"))
        size = max(1, min(_int(call.params.get("maxResults"), 50, "maxResults"), 50))
        key, name = self.spec.projects[0]
        values = [
            {
                "id": board,
                "self": f"{self.base(call)}/rest/agile/1.0/board/{board}",
                "name": f"{self.spec.teams[t]} board",
                "type": "scrum",
                "location": {
                    "projectId": 10000 + 100 * self.position,
                    "displayName": f"{name} ({key})",
                    "projectName": name,
                    "projectKey": key,
                    "projectTypeKey": "software",
                    "name": f"{name} ({key})",
                },
            }
            for t, board in enumerate(self.board_ids)
        ]
        return Reply(200, _page(values, start, size))

    def board_sprints(self, call: Call, board: str) -> Reply:
        if not board.isdigit() or int(board) not in self.board_ids:
            raise jira_error(
                404,
                "The requested board cannot be viewed because it either "
                "does not exist or you do not have permission to view it.",
            )
        team = self.team0 + self.board_ids.index(int(board))
        start = max(0, _int(call.params.get("startAt"), 0, "startAt"))
        size = max(1, min(_int(call.params.get("maxResults"), 50, "maxResults"), 50))
        states = {s.strip() for s in str(call.params.get("state") or "").split(",") if s.strip()}
        p = self.p
        values = []
        for s in np.nonzero(p.s_team == team)[0].tolist():
            obj = self.sprint_obj(s, call)
            if states and obj["state"] not in states:
                continue
            values.append(
                {
                    "id": obj["id"],
                    "self": f"{self.base(call)}/rest/agile/1.0/sprint/{obj['id']}",
                    "state": obj["state"],
                    "name": obj["name"],
                    "startDate": obj["startDate"],
                    "endDate": obj["endDate"],
                    **({"completeDate": obj["completeDate"]} if "completeDate" in obj else {}),
                    "originBoardId": int(board),
                    "goal": obj["goal"],
                }
            )
        values.sort(key=lambda v: v["id"])
        body = _page(values, start, size)
        body.pop("total")  # the sprint listing has no total, as in Atlassian's docs
        return Reply(200, body)


# --------------------------------------------------------------------------- helpers


# name and schema of each field in ``/field`` (Atlassian's shapes for the system fields)
FIELD_META: dict[str, tuple[str, dict[str, Any]]] = {
    "summary": ("Summary", {"type": "string", "system": "summary"}),
    "issuetype": ("Issue Type", {"type": "issuetype", "system": "issuetype"}),
    "status": ("Status", {"type": "status", "system": "status"}),
    "priority": ("Priority", {"type": "priority", "system": "priority"}),
    "assignee": ("Assignee", {"type": "user", "system": "assignee"}),
    "reporter": ("Reporter", {"type": "user", "system": "reporter"}),
    "created": ("Created", {"type": "datetime", "system": "created"}),
    "updated": ("Updated", {"type": "datetime", "system": "updated"}),
    "resolutiondate": ("Resolved", {"type": "datetime", "system": "resolutiondate"}),
    "resolution": ("Resolution", {"type": "resolution", "system": "resolution"}),
    "duedate": ("Due date", {"type": "date", "system": "duedate"}),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"}),
    "components": (
        "Components",
        {"type": "array", "items": "component", "system": "components"},
    ),
    "project": ("Project", {"type": "project", "system": "project"}),
    "parent": ("Parent", {"type": "issuelink", "system": "parent"}),
    "issuelinks": (
        "Linked Issues",
        {"type": "array", "items": "issuelinks", "system": "issuelinks"},
    ),
    "description": ("Description", {"type": "string", "system": "description"}),
    "customfield_10001": (
        "Team",
        {
            "type": "team",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team",
        },
    ),
    "customfield_10014": (
        "Epic Link",
        {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"},
    ),
    "customfield_10016": (
        "Story Points",
        {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
    ),
    "customfield_10019": (
        "Rank",
        {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-lexo-rank"},
    ),
    "customfield_10020": (
        "Sprint",
        {"type": "array", "items": "json", "custom": "com.pyxis.greenhopper.jira:gh-sprint"},
    ),
    "customfield_10021": (
        "Flagged",
        {
            "type": "array",
            "items": "option",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes",
        },
    ),
    "customfield_10030": (
        "Business Value",
        {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
    ),
    "customfield_10031": (
        "Cost",
        {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
    ),
    "customfield_10032": (
        "Time Criticality",
        {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
    ),
    "customfield_10033": (
        "Risk Reduction",
        {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
    ),
}


def _as_v2(issue: dict[str, Any]) -> None:
    """Cloud's v2 rendering of a v3 issue: rich text as plain text, links on /rest/api/2."""
    issue["self"] = issue["self"].replace("/rest/api/3/", "/rest/api/2/")
    fields = issue.get("fields") or {}
    doc = fields.get("description")
    if isinstance(doc, dict):
        fields["description"] = "\n".join(
            str(node.get("text", ""))
            for block in doc.get("content") or []
            for node in block.get("content") or []
        )


def _page(values: list[Any], start: int, size: int) -> dict[str, Any]:
    page = values[start : start + size]
    return {
        "maxResults": size,
        "startAt": start,
        "total": len(values),
        "isLast": start + len(page) >= len(values),
        "values": page,
    }


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise jira_error(400, f"The value '{value}' is not valid for '{name}'.") from None


def _digest(text: str) -> str:
    return format(sum(ord(c) * (k + 1) for k, c in enumerate(text)) % 1_000_000_007, "x")


def _token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _untoken(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict):
            raise ValueError
        return state
    except ValueError:
        raise jira_error(400, "The provided next page token is invalid or expired.") from None


def _base36(value: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, r = divmod(value, 36)
        out = digits[r] + out
    return out.rjust(width, "0")
