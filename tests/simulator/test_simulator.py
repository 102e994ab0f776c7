"""The tracker simulator over real loopback HTTP: shapes, paging, caps, faults, mutations."""

from __future__ import annotations

import base64
import difflib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from pmolens.simulator import DEMO_TOKEN, Simulator, demo_settings, generate
from pmolens.simulator.portfolio import STATUSES
from pmolens.warehouse.config import settings_from_dict

ANCHOR = datetime(2026, 6, 15, 12, tzinfo=UTC)
NW_JQL = "project in (NW, NWOPS) ORDER BY created ASC, key ASC"
WIQL = "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, size=2000, anchor=ANCHOR) as running:
        yield running


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    """A simulator of its own, for tests that change its state."""
    with Simulator(seed=7, size=2000, anchor=ANCHOR) as running:
        yield running


def cloud(sim: Simulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url("northwind"), auth=("pmo@northwind.example", DEMO_TOKEN), timeout=30
    )


def dc(sim: Simulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url("fabrikam"),
        headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
        timeout=30,
    )


def ado(sim: Simulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url("contoso"),
        auth=("", DEMO_TOKEN),
        params={"api-version": "7.1"},
        timeout=30,
    )


def cloud_ids(client: httpx.Client, jql: str = NW_JQL) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        body = {"jql": jql, "fields": ["id"], "maxResults": 5000}
        if token:
            body["nextPageToken"] = token
        page = client.post("/rest/api/3/search/jql", json=body).json()
        ids += [i["id"] for i in page["issues"]]
        token = page.get("nextPageToken")
        if page["isLast"]:
            assert token is None
            return ids


def live_count(sim: Simulator, tenant: str) -> int:
    p = sim.portfolio
    lo, hi = p.tenant_range(p.tenants.index(tenant))
    return int((~p.deleted[lo:hi]).sum())


# --------------------------------------------------------------------------- portfolio


def test_generation_is_deterministic_and_fast() -> None:
    first = generate(seed=7, size=2000, anchor=ANCHOR)
    second = generate(seed=7, size=2000, anchor=ANCHOR)
    other = generate(seed=8, size=2000, anchor=ANCHOR)
    for name in ("status", "updated", "parent", "team", "htime", "l_src", "x_other"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert first.title_override == second.title_override
    assert not np.array_equal(first.updated, other.updated)
    assert first.n == 2000
    assert [hi - lo for lo, hi in zip(first.tenant_lo, first.tenant_hi, strict=True)] == [
        900,
        500,
        600,
    ]
    solo = generate(seed=7, size=50_000, anchor=ANCHOR, tenants=("northwind",))
    assert solo.tenants == ("northwind",) and solo.n == 50_000
    assert len(solo.x_rec) == 0  # no partner, no cross-organisation links


def test_same_seed_same_payloads() -> None:
    """Two simulators with one seed answer byte for byte alike (up to their own address)."""
    bodies = []
    for _ in range(2):
        with Simulator(seed=7, size=2000, anchor=ANCHOR) as running:
            with cloud(running) as client:
                page = client.post(
                    "/rest/api/3/search/jql",
                    json={"jql": NW_JQL, "fields": ["*all"], "maxResults": 20},
                ).text
            with ado(running) as client:
                items = client.post(
                    "/_apis/wit/workitemsbatch",
                    json={"ids": list(range(1, 60)), "$expand": "relations"},
                ).text
            bodies.append((page + items).replace(running.url, "URL"))
    assert bodies[0] == bodies[1]


def test_planted_cases(sim: Simulator) -> None:
    p = sim.portfolio
    planted = p.planted
    for case in (
        "cycle",
        "timing_conflict",
        "same_sprint",
        "unscheduled_blocker",
        "priority_inversion",
        "long_changelog",
        "stale_in_progress",
        "blocked_status",
        "flagged",
        "unassigned_active",
        "unestimated_planned",
        "epic_many_teams",
        "done_epic_open_children",
        "open_epic_children_done",
        "cross_org",
        "near_duplicates",
        "unknown_link_type",
    ):
        assert planted.get(case), case
    # the cycle runs over three teams of Northwind, through the issue links as served
    a, b, c = planted["cycle"][0]
    keys = {i: p.key(i) for i in (a, b, c)}
    with cloud(sim) as client:
        got = client.post(
            "/rest/api/3/issue/bulkfetch",
            json={
                "issueIdsOrKeys": list(keys.values()),
                "fields": ["issuelinks", "customfield_10001"],
            },
        ).json()["issues"]
    teams = {issue["fields"]["customfield_10001"]["name"] for issue in got}
    assert len(teams) == 3
    blocks = {
        (issue["key"], link["outwardIssue"]["key"])
        for issue in got
        for link in issue["fields"]["issuelinks"]
        if link["type"]["name"] == "Blocks" and "outwardIssue" in link
    }
    assert {(keys[a], keys[b]), (keys[b], keys[c]), (keys[c], keys[a])} <= blocks
    # an epic over every Northwind team, stale work, flagged items in Jira's shape
    epic = planted["epic_many_teams"][0]
    kids = np.nonzero(p.parent == epic)[0]
    assert len({int(t) for t in p.team[kids]}) == 5
    for i in planted["stale_in_progress"]:
        assert p.category(i) == "in_progress"
        assert p.updated[i] <= int((ANCHOR - timedelta(days=30)).timestamp())
    assert any(STATUSES[int(p.status[i])].name == "Blocked" for i in planted["blocked_status"])
    flagged = next(i for i in planted["flagged"] if p.tenant[i] == 0)
    with cloud(sim) as client:
        issue = client.get(f"/rest/api/3/issue/{p.key(flagged)}").json()
    assert issue["fields"]["customfield_10021"][0] | {"self": None} == {
        "value": "Impediment",
        "id": "10019",
        "self": None,
    }
    first, second = planted["near_duplicates"][0]
    assert p.tenant[first] != p.tenant[second]
    ratio = difflib.SequenceMatcher(None, p.title(first).lower(), p.title(second).lower()).ratio()
    assert 0.9 < ratio < 1


# --------------------------------------------------------------------------- Jira Cloud


def test_cloud_search_pages_to_the_end(sim: Simulator) -> None:
    with cloud(sim) as client:
        ids = cloud_ids(client)
        assert len(ids) == live_count(sim, "northwind") == 900
        assert ids == sorted(ids, key=int)  # created order = id order
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            body = {"jql": NW_JQL, "fields": ["summary", "status"], "maxResults": 5000}
            if token:
                body["nextPageToken"] = token
            page = client.post("/rest/api/3/search/jql", json=body).json()
            assert len(page["issues"]) <= 100  # capped when fields are asked for
            assert set(page["issues"][0]["fields"]) == {"summary", "status"}
            seen += [i["id"] for i in page["issues"]]
            pages += 1
            token = page.get("nextPageToken")
            if page["isLast"]:
                break
        assert seen == ids and pages == 9
        bad = client.post("/rest/api/3/search/jql", json={"jql": NW_JQL, "nextPageToken": "zz"})
        assert bad.status_code == 400


def test_old_cloud_search_is_gone(sim: Simulator) -> None:
    with cloud(sim) as client:
        for response in (
            client.get("/rest/api/3/search", params={"jql": NW_JQL}),
            client.post("/rest/api/3/search", json={"jql": NW_JQL}),
        ):
            assert response.status_code == 410
            assert "search/jql" in response.json()["errorMessages"][0]


def test_jql_subset_and_errors(sim: Simulator) -> None:
    with cloud(sim) as client:
        all_ids = cloud_ids(client)
        nw = cloud_ids(client, "project = NW ORDER BY created ASC")
        ops = cloud_ids(client, "(project = NWOPS) order by created")
        assert sorted(nw + ops, key=int) == all_ids
        chain = cloud_ids(client, "(project in (NW, NWOPS)) AND (labels = chain)")
        p = sim.portfolio
        expected = [
            str(int(p.nid[i])) for i in range(900) if p.labels[i] & (1 << 6) and not p.deleted[i]
        ]
        assert chain == expected and chain
        for jql, fragment in (
            ("assignee = currentUser()", "does not exist"),
            ("project = NOPE", "does not exist for the field 'project'"),
            ("project = NW AND", "expecting a field name"),
            ('updated >= "yesterday"', "is invalid"),
        ):
            response = client.post("/rest/api/3/search/jql", json={"jql": jql})
            assert response.status_code == 400, jql
            assert fragment in response.json()["errorMessages"][0]


def test_changelog_beyond_100_entries(sim: Simulator) -> None:
    p = sim.portfolio
    long_one = next(i for i in p.planted["long_changelog"] if p.tenant[i] == 0)
    key = p.key(long_one)
    with cloud(sim) as client:
        histories, start = [], 0
        while True:
            page = client.get(
                f"/rest/api/3/issue/{key}/changelog", params={"startAt": start, "maxResults": 500}
            ).json()
            assert page["maxResults"] == 100
            histories += page["values"]
            start += len(page["values"])
            if page["isLast"]:
                break
        assert page["total"] == len(histories) > 100
        statuses = [h for h in histories if h["items"][0]["field"] == "status"]
        assert statuses[-1]["items"][0]["toString"] == STATUSES[int(p.status[long_one])].name
        # bulk fetch, paged by count over several issues, returns the same histories
        ids = [str(int(p.nid[long_one])), *cloud_ids(client)[:30]]
        bulk, token, calls = {}, None, 0
        while True:
            body = {
                "issueIdsOrKeys": ids,
                "fieldIds": ["status", "customfield_10021"],
                "maxResults": 40,
            }
            if token:
                body["nextPageToken"] = token
            page = client.post("/rest/api/3/changelog/bulkfetch", json=body).json()
            calls += 1
            for entry in page["issueChangeLogs"]:
                bulk.setdefault(entry["issueId"], []).extend(entry["changeHistories"])
            token = page.get("nextPageToken")
            if not token:
                break
        assert calls > 3
        mine = bulk[ids[0]]
        assert [h["id"] for h in mine] == [h["id"] for h in histories]
        assert isinstance(mine[0]["created"], int)  # epoch seconds, as in Atlassian's example
        tz = ZoneInfo("Europe/Amsterdam")
        assert histories[0]["created"] == datetime.fromtimestamp(mine[0]["created"], tz).strftime(
            "%Y-%m-%dT%H:%M:%S.000%z"
        )
        too_many = client.post(
            "/rest/api/3/changelog/bulkfetch", json={"issueIdsOrKeys": ["1"] * 1001}
        )
        assert too_many.status_code == 400


def test_agile_boards_and_sprints_page(sim: Simulator) -> None:
    with cloud(sim) as client:
        boards = client.get("/rest/agile/1.0/board", params={"maxResults": 2}).json()
        assert boards["total"] == 5 and not boards["isLast"] and len(boards["values"]) == 2
        sprints, start = [], 0
        while True:
            page = client.get(
                "/rest/agile/1.0/board/3/sprint", params={"startAt": start, "maxResults": 5}
            ).json()
            sprints += page["values"]
            start += len(page["values"])
            if page["isLast"]:
                break
        states = [s["state"] for s in sprints]
        assert states.count("active") == 1 and states[-1] == "future"
        assert all(s["originBoardId"] == 3 for s in sprints)
        assert "completeDate" in sprints[0] and sprints[0]["startDate"].endswith(".000Z")
        # Mobile (board 3) runs a week behind everyone else's boundaries
        other = client.get("/rest/agile/1.0/board/1/sprint").json()["values"]
        offset = datetime.fromisoformat(sprints[0]["startDate"]) - datetime.fromisoformat(
            other[0]["startDate"]
        )
        assert offset == timedelta(days=7)


def test_remote_links_point_at_the_partner(sim: Simulator) -> None:
    with cloud(sim) as client:
        chained = cloud_ids(client, "project in (NW, NWOPS) AND labels = chain")
        links = [
            link
            for native in chained[:10]
            for link in client.get(f"/rest/api/3/issue/{native}/remotelink").json()
        ]
    assert links and {link["relationship"] for link in links} <= {"blocks", "is blocked by"}
    url = links[0]["object"]["url"]
    assert url.startswith(sim.url)
    if "/_workitems/edit/" in url:
        with ado(sim) as client:
            native = url.rsplit("/", 1)[-1]
            got = client.get(f"/Delivery/_apis/wit/workitems/{native}")
            assert got.status_code == 200
    else:
        with dc(sim) as client:
            assert client.get(f"/rest/api/2/issue/{url.rsplit('/', 1)[-1]}").status_code == 200


# --------------------------------------------------------------------------- Jira DC


def test_dc_search_pages_with_start_at(sim: Simulator) -> None:
    with dc(sim) as client:
        seen, start = [], 0
        while True:
            page = client.get(
                "/rest/api/2/search",
                params={
                    "jql": "project in (FAB, FABSUP) ORDER BY created ASC, key ASC",
                    "startAt": start,
                    "maxResults": 150,
                    "fields": "summary,status,customfield_10020,customfield_10014,components",
                    "expand": "changelog",
                },
            ).json()
            assert page["total"] == 500
            seen += page["issues"]
            start += len(page["issues"])
            if start >= page["total"]:
                break
        assert len({i["id"] for i in seen}) == 500
        capped = client.get("/rest/api/2/search", params={"jql": "", "maxResults": 5000}).json()
        assert capped["maxResults"] == 1000 and len(capped["issues"]) == 500
    story = next(i for i in seen if i["fields"]["customfield_10014"])
    assert story["fields"]["components"][0]["name"] in ("Routing", "Fleet", "Invoicing")
    planned = next(i for i in seen if i["fields"]["customfield_10020"])
    assert planned["fields"]["customfield_10020"][0].startswith(
        "com.atlassian.greenhopper.service.sprint.Sprint@"
    )
    changelog = max((i["changelog"] for i in seen), key=lambda c: c["total"])
    assert changelog["total"] == len(changelog["histories"]) > 100  # complete on DC
    assert "fieldId" not in changelog["histories"][0]["items"][0]


# --------------------------------------------------------------------------- Azure DevOps


def test_wiql_enforces_the_20000_cap() -> None:
    big = Simulator(seed=7, size=20_500, anchor=ANCHOR, tenants=("contoso",))
    with big, ado(big) as client:
        over = client.post("/Delivery/_apis/wit/wiql", json={"query": WIQL})
        assert over.status_code == 400
        error = over.json()
        assert error["message"].startswith("VS402337: The number of work items returned")
        assert error["typeKey"] == "WorkItemTrackingQueryResultSizeLimitExceededException"
        assert {"$id", "innerException", "typeName", "errorCode", "eventId"} <= set(error)
        window = client.post(
            "/Delivery/_apis/wit/wiql",
            params={"$top": 20_000},
            json={"query": f"{WIQL} AND [System.Id] > 0 ORDER BY [System.Id] ASC"},
        ).json()
        assert len(window["workItems"]) == 20_000
        rest = client.post(
            "/Delivery/_apis/wit/wiql",
            params={"$top": 20_000},
            json={"query": f"{WIQL} AND [System.Id] > 20000 ORDER BY [System.Id] ASC"},
        ).json()
        assert [w["id"] for w in rest["workItems"]] == list(range(20_001, 20_501))


def test_wiql_small_cap_and_filters() -> None:
    small = Simulator(seed=7, size=600, anchor=ANCHOR, tenants=("contoso",), wiql_cap=100)
    with small, ado(small) as client:
        assert client.post("/Delivery/_apis/wit/wiql", json={"query": WIQL}).status_code == 400
        top = client.post(
            "/Delivery/_apis/wit/wiql", params={"$top": 50}, json={"query": WIQL}
        ).json()
        assert [w["id"] for w in top["workItems"]] == list(range(1, 51))
        under = client.post(
            "/Delivery/_apis/wit/wiql",
            json={
                "query": f"{WIQL} AND [System.AreaPath] UNDER 'Delivery\\Data' "
                "AND [System.Id] <= 200 ORDER BY [System.Id] ASC"
            },
        ).json()["workItems"]
        p = small.portfolio
        expected = [int(p.nid[i]) for i in range(200) if p.team_name(i) == "Data"]
        assert [w["id"] for w in under] == expected
        unknown = client.post(
            "/Delivery/_apis/wit/wiql", json={"query": f"{WIQL} AND [Custom.Nope] = 1"}
        )
        assert unknown.status_code == 400 and "TF51005" in unknown.json()["message"]
        assert (
            httpx.post(
                f"{small.base_url('contoso')}/Delivery/_apis/wit/wiql",
                json={"query": WIQL},
                auth=("", DEMO_TOKEN),
            ).status_code
            == 400
        )  # no api-version


def test_workitemsbatch_limits_and_relations(sim: Simulator) -> None:
    with ado(sim) as client:
        too_many = client.post("/_apis/wit/workitemsbatch", json={"ids": list(range(1, 202))})
        assert too_many.status_code == 400
        both = client.post(
            "/_apis/wit/workitemsbatch",
            json={"ids": [1], "$expand": "relations", "fields": ["System.Title"]},
        )
        assert both.status_code == 400
        only = client.post(
            "/_apis/wit/workitemsbatch",
            json={"ids": [5], "fields": ["System.Title", "System.State"]},
        ).json()["value"][0]
        assert set(only["fields"]) == {"System.Title", "System.State"}
        items = {}
        for start in range(1, 601, 200):
            page = client.post(
                "/Delivery/_apis/wit/workitemsbatch",
                json={
                    "ids": list(range(start, start + 200)),
                    "$expand": "relations",
                    "errorPolicy": "omit",
                },
            ).json()
            items.update({w["id"]: w for w in page["value"]})
        assert len(items) == 600
    ends = {}
    for native, item in items.items():
        for rel in item.get("relations", []):
            if rel["rel"].startswith("System.LinkTypes"):
                ends[(native, rel["rel"], int(rel["url"].rsplit("/", 1)[-1]))] = rel
    pairs = {
        "System.LinkTypes.Dependency-Forward": "System.LinkTypes.Dependency-Reverse",
        "System.LinkTypes.Hierarchy-Forward": "System.LinkTypes.Hierarchy-Reverse",
        "System.LinkTypes.Related": "System.LinkTypes.Related",
        "System.LinkTypes.Duplicate-Forward": "System.LinkTypes.Duplicate-Reverse",
    }
    pairs |= {v: k for k, v in pairs.items()}
    assert any(k[1] == "System.LinkTypes.Dependency-Forward" for k in ends)
    for native, rel, other in ends:
        assert (other, pairs[rel], native) in ends  # both ends carry the link
    hyper = [r for i in items.values() for r in i.get("relations", []) if r["rel"] == "Hyperlink"]
    assert hyper and all("/browse/" in r["url"] for r in hyper)
    assert {r["attributes"]["comment"] for r in hyper} <= {"blocks", "is blocked by"}
    states = {i["fields"]["System.State"] for i in items.values()}
    assert {"Blocked", "Waiting for Partner", "Closed", "Active", "New"} <= states
    assert any(i["fields"].get("Microsoft.VSTS.CMMI.Blocked") == "Yes" for i in items.values())


def test_work_item_types_states_teams_iterations(sim: Simulator) -> None:
    with ado(sim) as client:
        types = client.get("/Delivery/_apis/wit/workitemtypes").json()
        assert {t["name"] for t in types["value"]} >= {
            "Epic",
            "Feature",
            "User Story",
            "Impediment",
        }
        states = client.get("/Delivery/_apis/wit/workitemtypes/User%20Story/states").json()
        by_name = {s["name"]: s["category"] for s in states["value"]}
        assert by_name["Waiting for Partner"] == "InProgress" and by_name["Resolved"] == "Resolved"
        assert by_name["Removed"] == "Removed" and states["count"] == len(states["value"])
        teams = client.get("/_apis/projects/Delivery/teams").json()
        assert [t["name"] for t in teams["value"]] == ["Identity", "Data", "Portal"]
        iterations = client.get("/Delivery/Data/_apis/work/teamsettings/iterations").json()
        frames = [i["attributes"]["timeFrame"] for i in iterations["value"]]
        assert frames.count("current") == 1 and frames[0] == "past" and frames[-1] == "future"
        assert iterations["value"][0]["path"] == "Delivery\\Data\\Sprint 1"
        fields = client.get("/Delivery/Data/_apis/work/teamsettings/teamfieldvalues").json()
        assert fields["defaultValue"] == "Delivery\\Data"


def test_revisions_feed_and_updates_resume_after_mutation(fresh: Simulator) -> None:
    params = {"fields": "System.State,System.ChangedDate,System.WorkItemType"}
    with ado(fresh) as client:
        revisions, token, pages = [], None, 0
        while True:
            query = dict(params) | ({"continuationToken": token} if token else {})
            page = client.get("/Delivery/_apis/wit/reporting/workitemrevisions", params=query)
            body = page.json()
            revisions += body["values"]
            token, pages = body["continuationToken"], pages + 1
            if body["isLastBatch"]:
                break
        assert pages > 1 and "continuationToken=" in body["nextLink"]
        changed = [r["fields"]["System.ChangedDate"] for r in revisions]
        assert changed == sorted(changed)
        latest = {}
        for r in revisions:
            latest[r["id"]] = max(latest.get(r["id"], 0), r["rev"])
        batch = client.post("/_apis/wit/workitemsbatch", json={"ids": [1, 2, 3, 200]}).json()
        for item in batch["value"]:
            assert latest[item["id"]] == item["rev"] == item["fields"]["System.Rev"]
        # per-item updates tell the same story, paged by $top / $skip
        long_one = next(i for i in fresh.portfolio.planted["long_changelog"] if i >= 1400)
        native = int(fresh.portfolio.nid[long_one])
        updates, skip = [], 0
        while True:
            page = client.get(
                f"/Delivery/_apis/wit/workItems/{native}/updates",
                params={"$top": 50, "$skip": skip},
            ).json()
            updates += page["value"]
            skip += len(page["value"])
            if len(page["value"]) < 50:
                break
        assert len(updates) == latest[native] > 100
        assert updates[-1]["revisedDate"] == "9999-01-01T00:00:00Z"
        assert "oldValue" in updates[1]["fields"]["System.State"]
        # a mutation shows up after the stored token, and only there
        summary = fresh.mutate(fraction=0.02, seed=5, deletes=0, moves=0)
        query = dict(params) | {"continuationToken": token}
        after = client.get("/Delivery/_apis/wit/reporting/workitemrevisions", params=query).json()
        assert after["isLastBatch"]
        mutated = {int(u["id"]) for u in summary["updated"] if u["tenant"] == "contoso"}
        assert sorted(r["id"] for r in after["values"]) == sorted(mutated)
        # the revisions read before are unchanged: history is append-only
        again = client.get("/Delivery/_apis/wit/reporting/workitemrevisions", params=params)
        assert again.json()["values"] == revisions[: len(again.json()["values"])]


# --------------------------------------------------------------------------- knobs


def test_throttling_faults_and_hints_are_deterministic(fresh: Simulator) -> None:
    with ado(fresh) as client:
        fresh.set_faults(rate_429=1.0)
        throttled = client.get("/_apis/projects/Delivery/teams")
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        for header in (
            "X-RateLimit-Resource",
            "X-RateLimit-Delay",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ):
            assert header in throttled.headers
        fresh.set_faults(rate_429=0.0, hint_rate=1.0)
        hinted = client.get("/_apis/projects/Delivery/teams")
        assert hinted.status_code == 200 and hinted.headers["X-RateLimit-Delay"] == "0.5"
        fresh.set_faults(hint_rate=0.0, rate_429=0.3, rate_5xx=0.2)
        first = [client.get("/_apis/projects/Delivery/teams").status_code for _ in range(30)]
    with Simulator(seed=7, size=2000, anchor=ANCHOR) as twin, ado(twin) as client:
        twin.set_faults(rate_429=1.0)
        client.get("/_apis/projects/Delivery/teams")
        twin.set_faults(rate_429=0.0, hint_rate=1.0)
        client.get("/_apis/projects/Delivery/teams")
        twin.set_faults(hint_rate=0.0, rate_429=0.3, rate_5xx=0.2)
        second = [client.get("/_apis/projects/Delivery/teams").status_code for _ in range(30)]
    assert first == second and {200, 429, 503} <= set(first)
    with cloud(fresh) as client:
        fresh.set_faults(rate_429=0.0, rate_5xx=0.0)
        assert client.get("/rest/api/3/myself").json()["timeZone"] == "Europe/Amsterdam"


def test_auth_is_required(sim: Simulator) -> None:
    wrong = base64.b64encode(b"pmo@northwind.example:nope").decode()
    assert (
        httpx.get(
            f"{sim.base_url('northwind')}/rest/api/3/myself",
            headers={"Authorization": f"Basic {wrong}"},
        ).status_code
        == 401
    )
    # Jira DC takes a personal access token as Bearer, or user and password as Basic
    dc = f"{sim.base_url('fabrikam')}/rest/api/2/myself"
    assert httpx.get(dc, auth=("pmo", DEMO_TOKEN)).status_code == 200
    as_basic = httpx.get(dc, auth=("pmo", "nope"))
    assert as_basic.status_code == 401 and as_basic.json()["errorMessages"]
    assert httpx.get(dc, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{sim.base_url('contoso')}/_apis/projects").status_code == 401


def test_mutate_updates_moves_and_deletes(fresh: Simulator) -> None:
    p = fresh.portfolio
    before = datetime.fromtimestamp(p.clock, UTC).astimezone(ZoneInfo("Europe/Amsterdam"))
    with cloud(fresh) as client:
        old_ids = set(cloud_ids(client))
        response = httpx.post(
            f"{fresh.url}/_sim/mutate",
            json={"fraction": 0.01, "seed": 3, "deletes": 6, "moves": 6},
        )
        summary = response.json()
        since = f'project in (NW, NWOPS) AND updated >= "{before:%Y/%m/%d %H:%M}"'
        changed = set(cloud_ids(client, since))
        touched = {
            u["id"] for u in summary["updated"] + summary["moved"] if u["tenant"] == "northwind"
        }
        assert touched and changed == touched
        page = client.post(
            "/rest/api/3/search/jql",
            json={"jql": since, "fields": ["updated"], "maxResults": 100},
        ).json()
        stamp = min(
            datetime.strptime(i["fields"]["updated"], "%Y-%m-%dT%H:%M:%S.000%z")
            for i in page["issues"]
        )
        assert stamp >= before
        deleted = {d["id"] for d in summary["deleted"] if d["tenant"] == "northwind"}
        now_ids = set(cloud_ids(client))
        assert now_ids == old_ids - deleted
        for gone in deleted:
            assert client.get(f"/rest/api/3/issue/{gone}").status_code == 404
        moved = [m for m in summary["moved"] if m["tenant"] == "northwind"]
        assert moved
        for m in moved:
            assert m["new_key"] != m["key"]
            by_id = client.get(f"/rest/api/3/issue/{m['id']}").json()
            assert by_id["key"] == m["new_key"] and m["id"] in now_ids
            by_old_key = client.get(f"/rest/api/3/issue/{m['key']}").json()
            assert by_old_key["id"] == m["id"]  # Jira follows the old key to the moved issue
    stats = httpx.get(f"{fresh.url}/_sim/stats").json()
    assert stats["requests"]["POST /northwind/rest/api/3/search/jql"] >= 3
    assert stats["version"] == 1


def test_demo_settings_match_the_simulator(sim: Simulator) -> None:
    settings = settings_from_dict(demo_settings(sim.url))
    names = [s.name for s in settings.sources]
    assert names == ["northwind-jira", "fabrikam-jira-dc", "contoso-ado"]
    northwind = settings.source("northwind-jira")
    assert northwind.base_url == sim.base_url("northwind")
    assert northwind.fields.team == "customfield_10001" and northwind.teams_from == "field"
    assert settings.source("fabrikam-jira-dc").fields.epic_link == "customfield_10014"
    assert settings.source("contoso-ado").team_map["Delivery\\Data"] == "Data"
    assert settings.cross_links == []


def test_warm_render_cache_answers_the_same_and_forgets_after_a_mutation() -> None:
    """The render cache (filled by /_sim/warm or on first use) never serves a stale item."""
    fields = "System.State,System.ChangedDate,System.WorkItemType,Microsoft.VSTS.CMMI.Blocked"
    ids = [1, 2, 3]
    with (
        Simulator(seed=7, size=600, anchor=ANCHOR, tenants=("contoso",)) as cold,
        ado(cold) as client,
    ):
        batch_cold = client.post("/_apis/wit/workitemsbatch", json={"ids": ids}).json()
        feed_cold = client.get(
            "/Delivery/_apis/wit/reporting/workitemrevisions", params={"fields": fields}
        ).json()
    with Simulator(seed=7, size=600, anchor=ANCHOR, tenants=("contoso",)) as warm:
        warmed = httpx.post(f"{warm.url}/_sim/warm", json={}, timeout=60).json()
        assert warmed["rendered"] > 600
        with ado(warm) as client:
            batch = client.post("/_apis/wit/workitemsbatch", json={"ids": ids}).json()
            feed = client.get(
                "/Delivery/_apis/wit/reporting/workitemrevisions", params={"fields": fields}
            ).json()
            assert batch == _rebased(batch_cold, cold.url, warm.url)
            assert feed["values"] == feed_cold["values"]
            # omitted ids stay null in their place
            omitted = client.post(
                "/_apis/wit/workitemsbatch", json={"ids": [1, 999_999], "errorPolicy": "omit"}
            ).json()
            assert omitted["count"] == 2 and omitted["value"][1] is None
            first = list(range(1, 51))
            served = client.post("/_apis/wit/workitemsbatch", json={"ids": first}).json()
            summary = warm.mutate(fraction=0.5, seed=9, deletes=0, moves=0)
            changed = {int(u["id"]) for u in summary["updated"]} & set(first)
            assert changed
            after = client.post("/_apis/wit/workitemsbatch", json={"ids": first}).json()
            revs = {i["id"]: i["rev"] for i in served["value"]}
            for item in after["value"]:
                assert item["rev"] == item["fields"]["System.Rev"]
                bumped = item["rev"] > revs[item["id"]]
                assert bumped == (item["id"] in changed), item["id"]


def _rebased(body: object, old: str, new: str) -> object:
    """The same payload as another simulator (another port) would send it."""
    import json

    return json.loads(json.dumps(body).replace(old, new))
