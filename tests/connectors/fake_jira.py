"""A small in-memory Jira behind respx routes, for connector and sync tests.

Shapes follow Atlassian's docs; pages are deliberately small so every test walks pagination.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx

BASE = "https://fake.atlassian.net"
DC_BASE = "https://jira.fake.example"


def issue(n: int, *, status: str = "To Do", updated: datetime | None = None, **fields: Any):
    category = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}[status]
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    return {
        "id": str(10000 + n),
        "key": f"FK-{n}",
        "fields": {
            "summary": f"Story {n}",
            "issuetype": {"name": "Story"},
            "status": {"name": status, "statusCategory": {"key": category}},
            "created": created.isoformat(),
            "updated": (updated or created).isoformat(),
            "priority": {"name": "Medium", "id": "3"},
            "issuelinks": [],
            "project": {"key": "FK"},
            **fields,
        },
    }


class FakeJira:
    """Issues, histories and faults; mount on a respx router with ``mount``."""

    def __init__(self, count: int = 7, *, page: int = 3, cloud: bool = True) -> None:
        self.cloud = cloud
        self.page = page
        self.issues: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, list[dict[str, Any]]] = {}
        for n in range(1, count + 1):
            self.add(issue(n))
        self.fail: dict[
            str, list[int]
        ] = {}  # route name -> statuses to answer first (0 = bad JSON)
        self.calls: dict[str, int] = {}
        self.seen_jql: list[str] = []
        self.bulk_sizes: list[int] = []
        # the type catalogue (GET /issuetype), Jira's Cloud shape; a test may replace it
        self.issue_types: Any = [
            {"id": "10000", "name": "Epic", "subtask": False, "hierarchyLevel": 1},
            {"id": "10001", "name": "Story", "subtask": False, "hierarchyLevel": 0},
            {"id": "10003", "name": "Sub-task", "subtask": True, "hierarchyLevel": -1},
        ]
        self.remote_links: Any = []
        self.dc_changelog_cap: int | None = None  # DC search: histories cut here (total stays)
        self.sprints: Any = []
        # route name -> bodies to answer 200 with before the real answer (wrong shapes, HTML)
        self.odd: dict[str, list[Any]] = {}

    def add(self, raw: dict[str, Any], history_entries: int = 2) -> None:
        self.issues[raw["id"]] = raw
        self.histories[raw["id"]] = [
            {
                "id": f"{raw['id']}{i:04d}",
                "created": (datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=i)).isoformat(),
                "items": [
                    {
                        "field": "status",
                        "fieldId": "status",
                        "fromString": "To Do" if i % 2 == 0 else "In Progress",
                        "toString": "In Progress" if i % 2 == 0 else "To Do",
                    }
                ],
            }
            for i in range(history_entries)
        ]

    def touch(self, native: str, when: datetime, status: str | None = None) -> None:
        fields = self.issues[native]["fields"]
        fields["updated"] = when.isoformat()
        if status:
            category = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}[status]
            fields["status"] = {"name": status, "statusCategory": {"key": category}}

    # ---------------------------------------------------------------- routes

    def _maybe_fail(self, name: str) -> httpx.Response | None:
        self.calls[name] = self.calls.get(name, 0) + 1
        odd = self.odd.get(name)
        if odd:
            body = odd.pop(0)
            if isinstance(body, bytes):  # e.g. a gateway's HTML page under 200
                return httpx.Response(200, content=body, headers={"Content-Type": "text/html"})
            return httpx.Response(200, json=body)
        queue = self.fail.get(name)
        if queue:
            status = queue.pop(0)
            if status == 0:  # a truncated body
                return httpx.Response(200, text='{"issues": [{"id": "1')
            headers = {"Retry-After": "2"} if status == 429 else {}
            return httpx.Response(status, json={"errorMessages": ["fault"]}, headers=headers)
        return None

    def _matching(self, jql: str) -> list[dict[str, Any]]:
        self.seen_jql.append(jql)
        found = sorted(self.issues.values(), key=lambda i: (i["fields"]["created"], int(i["id"])))
        match = re.search(r'updated >= "(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d)"', jql)
        if match:
            y, mo, d, h, mi = map(int, match.groups())
            # this fake's user lives in UTC (see /myself)
            since = datetime(y, mo, d, h, mi, tzinfo=UTC)
            found = [i for i in found if datetime.fromisoformat(i["fields"]["updated"]) >= since]
        for op, bound in re.findall(r"\bid (>=|<) (\d+)", jql):
            if op == ">=":
                found = [i for i in found if int(i["id"]) >= int(bound)]
            else:
                found = [i for i in found if int(i["id"]) < int(bound)]
        if re.search(r"order by created desc", jql, re.I):
            found.reverse()
        return found

    def mount(self, router: respx.MockRouter) -> None:
        base = BASE if self.cloud else DC_BASE
        api = "/rest/api/3" if self.cloud else "/rest/api/2"
        router.get(f"{base}{api}/myself").mock(side_effect=self._myself)
        router.get(f"{base}{api}/status").mock(side_effect=self._status)
        router.get(f"{base}{api}/issuetype").mock(side_effect=self._issue_types)
        router.post(f"{base}{api}/search/jql").mock(side_effect=self._search_jql)
        router.post(f"{base}{api}/issue/bulkfetch").mock(side_effect=self._issue_bulk)
        router.post(f"{base}{api}/changelog/bulkfetch").mock(side_effect=self._changelog_bulk)
        router.get(f"{base}{api}/search").mock(side_effect=self._search_dc)
        router.get(url__regex=rf"^{re.escape(base)}{api}/issue/\d+(\?.*)?$").mock(
            side_effect=self._issue
        )
        router.get(url__regex=rf"{re.escape(base)}{api}/issue/\d+/remotelink").mock(
            side_effect=self._remote_links
        )
        router.get(url__regex=rf"{re.escape(base)}/rest/agile/1.0/board/\d+/sprint").mock(
            side_effect=self._sprints
        )

    def _myself(self, request: httpx.Request) -> httpx.Response:
        return self._maybe_fail("myself") or httpx.Response(
            200, json={"accountId": "abc", "timeZone": "UTC"}
        )

    def _status(self, request: httpx.Request) -> httpx.Response:
        return self._maybe_fail("status") or httpx.Response(
            200,
            json=[
                {"name": "To Do", "id": "1", "statusCategory": {"key": "new"}},
                {"name": "In Progress", "id": "3", "statusCategory": {"key": "indeterminate"}},
                {"name": "Done", "id": "4", "statusCategory": {"key": "done"}},
            ],
        )

    def _issue(self, request: httpx.Request) -> httpx.Response:
        """``GET /issue/{id}?expand=changelog``: the whole history of one issue."""
        failed = self._maybe_fail("issue")
        if failed:
            return failed
        native = request.url.path.rsplit("/", 1)[-1]
        hist = self.histories.get(native, [])
        changelog = {"startAt": 0, "maxResults": len(hist), "total": len(hist), "histories": hist}
        return httpx.Response(200, json={"id": native, "changelog": changelog})

    def _issue_types(self, request: httpx.Request) -> httpx.Response:
        return self._maybe_fail("issuetype") or httpx.Response(200, json=self.issue_types)

    def _remote_links(self, request: httpx.Request) -> httpx.Response:
        return self._maybe_fail("remotelink") or httpx.Response(200, json=self.remote_links)

    def _sprints(self, request: httpx.Request) -> httpx.Response:
        return self._maybe_fail("sprints") or httpx.Response(
            200, json={"maxResults": 50, "startAt": 0, "isLast": True, "values": self.sprints}
        )

    def _search_jql(self, request: httpx.Request) -> httpx.Response:
        failed = self._maybe_fail("search")
        if failed:
            return failed
        body = json.loads(request.content)
        found = self._matching(body["jql"])
        start = int(body.get("nextPageToken") or 0)
        chunk = found[start : start + self.page]
        nxt = start + self.page
        page: dict[str, Any] = {
            "issues": [{"id": i["id"]} for i in chunk],
            "isLast": nxt >= len(found),
        }
        if nxt < len(found):
            page["nextPageToken"] = str(nxt)
        return httpx.Response(200, json=page)

    def _issue_bulk(self, request: httpx.Request) -> httpx.Response:
        failed = self._maybe_fail("issues")
        if failed:
            return failed
        ids = json.loads(request.content)["issueIdsOrKeys"]
        self.bulk_sizes.append(len(ids))
        return httpx.Response(
            200,
            json={"issues": [self.issues[i] for i in ids if i in self.issues], "issueErrors": []},
        )

    def _changelog_bulk(self, request: httpx.Request) -> httpx.Response:
        failed = self._maybe_fail("changelog")
        if failed:
            return failed
        body = json.loads(request.content)
        entries = [(i, h) for i in body["issueIdsOrKeys"] for h in self.histories.get(i, [])]
        start = int(body.get("nextPageToken") or 0)
        size = 100  # smaller than asked, as the real API may answer
        chunk = entries[start : start + size]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for native, history in chunk:
            grouped.setdefault(native, []).append(history)
        page: dict[str, Any] = {
            "issueChangeLogs": [{"issueId": k, "changeHistories": v} for k, v in grouped.items()]
        }
        if start + size < len(entries):
            page["nextPageToken"] = str(start + size)
        return httpx.Response(200, json=page)

    def _search_dc(self, request: httpx.Request) -> httpx.Response:
        failed = self._maybe_fail("search")
        if failed:
            return failed
        params = request.url.params
        found = self._matching(params["jql"])
        start = int(params.get("startAt", 0))
        size = min(int(params.get("maxResults", 50)), self.page)
        chunk = found[start : start + size]
        issues = []
        for raw in chunk:
            entry = dict(raw)
            if params.get("expand") == "changelog":
                hist = self.histories.get(raw["id"], [])
                shown = hist[: self.dc_changelog_cap] if self.dc_changelog_cap else hist
                entry["changelog"] = {
                    "startAt": 0,
                    "maxResults": len(shown),
                    "total": len(hist),
                    "histories": shown,
                }
            issues.append(entry)
        return httpx.Response(
            200,
            json={"startAt": start, "maxResults": size, "total": len(found), "issues": issues},
        )
