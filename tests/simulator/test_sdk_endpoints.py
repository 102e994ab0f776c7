"""What the vendor SDKs ask the simulator (bench/sync_bench.py's baselines): Jira's serverInfo,
field list and v2 search/jql, Basic auth on DC, Azure DevOps location discovery and per-item
revisions; and the pycontribs ``jira`` and Microsoft ``azure-devops`` clients, unchanged, against it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from pmolens.simulator import DEMO_TOKEN, Simulator

ANCHOR = datetime(2026, 6, 15, 12, tzinfo=UTC)
WIQL = "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, size=600, anchor=ANCHOR) as running:
        yield running


def cloud(sim: Simulator) -> httpx.Client:
    auth = ("pmo@northwind.example", DEMO_TOKEN)
    return httpx.Client(base_url=sim.base_url("northwind"), auth=auth, timeout=30)


def ado(sim: Simulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url("contoso"),
        auth=("", DEMO_TOKEN),
        params={"api-version": "7.1"},
        timeout=30,
    )


def live_items(sim: Simulator) -> int:
    return int((~sim.portfolio.deleted).sum())


def test_server_info_says_cloud_or_server(sim: Simulator) -> None:
    with cloud(sim) as client:
        for version in ("2", "3"):
            info = client.get(f"/rest/api/{version}/serverInfo").json()
            assert info["deploymentType"] == "Cloud"
            assert info["baseUrl"] == sim.base_url("northwind")
    dc = httpx.get(
        f"{sim.base_url('fabrikam')}/rest/api/2/serverInfo", auth=("pmo", DEMO_TOKEN)
    ).json()
    assert dc["deploymentType"] == "Server" and dc["versionNumbers"][0] >= 9


def test_field_list_names_every_field_of_an_issue(sim: Simulator) -> None:
    with cloud(sim) as client:
        fields = {f["id"]: f for f in client.get("/rest/api/2/field").json()}
        page = client.post(
            "/rest/api/3/search/jql", json={"jql": "project = NW", "fields": ["*all"]}
        ).json()
    assert set(page["issues"][0]["fields"]) <= set(fields)
    points = fields["customfield_10016"]
    assert points["custom"] and points["name"] == "Story Points"
    assert points["schema"] == {
        "type": "number",
        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float",
        "customId": 10016,
    }
    assert fields["status"]["clauseNames"] == ["status"] and not fields["status"]["custom"]


def test_cloud_search_jql_on_v2_pages_as_v3_with_plain_text(sim: Simulator) -> None:
    def ids(version: str) -> tuple[list[str], list[object]]:
        seen, descriptions, token = [], [], None
        with cloud(sim) as client:
            while True:
                params = {"jql": "project = NW ORDER BY created ASC", "maxResults": "40"}
                params |= {"fields": "description", "expand": "changelog"}
                if token:
                    params["nextPageToken"] = token
                page = client.get(f"/rest/api/{version}/search/jql", params=params).json()
                seen += [i["id"] for i in page["issues"]]
                descriptions += [i["fields"].get("description") for i in page["issues"]]
                assert all("changelog" in i for i in page["issues"])
                token = page.get("nextPageToken")
                if not token:
                    return seen, descriptions

    v2, text = ids("2")
    v3, docs = ids("3")
    assert v2 == v3 and len(v2) > 40
    assert any(isinstance(d, dict) for d in docs)
    assert all(d is None or isinstance(d, str) for d in text)
    assert [d is None for d in text] == [d is None for d in docs]


def test_ado_location_discovery(sim: Simulator) -> None:
    with ado(sim) as client:
        options = client.request("OPTIONS", "/_apis").json()
        areas = client.get("/_apis/ResourceAreas").json()
        area = client.get("/_apis/ResourceAreas/5264459e-e5e0-4bd8-b118-0985e68a4ec5").json()
    by_id = {loc["id"]: loc for loc in options["value"]}
    assert options["count"] == len(options["value"])
    revisions = by_id["a00c85a5-80fa-4565-99c3-bcd2181434bb"]
    assert (revisions["area"], revisions["resourceName"]) == ("wit", "revisions")
    assert revisions["routeTemplate"].startswith("{project}/_apis/{area}/workItems/{id}/")
    assert "908509b6-4248-4475-a1cd-829139ba419f" in by_id  # workItemsBatch
    assert areas["value"] == [area]
    assert area["name"] == "wit" and area["locationUrl"] == sim.base_url("contoso") + "/"


def test_ado_revisions_are_whole_items_per_revision(sim: Simulator) -> None:
    with ado(sim) as client:
        ids = [
            w["id"]
            for w in client.post("/Delivery/_apis/wit/wiql", json={"query": WIQL}).json()[
                "workItems"
            ]
        ]
        wid = ids[3]
        item = client.get(f"/Delivery/_apis/wit/workitems/{wid}").json()
        revisions = client.get(f"/Delivery/_apis/wit/workItems/{wid}/revisions").json()
        updates = client.get(f"/Delivery/_apis/wit/workItems/{wid}/updates").json()
        second = client.get(
            f"/Delivery/_apis/wit/workItems/{wid}/revisions", params={"$skip": 1, "$top": 1}
        ).json()
        missing = client.get("/Delivery/_apis/wit/workItems/999999999/revisions")
    values = revisions["value"]
    assert revisions["count"] == len(values) == item["rev"] == updates["count"]
    assert [v["rev"] for v in values] == list(range(1, item["rev"] + 1))
    assert values[-1]["fields"] == item["fields"]
    assert values[0]["fields"]["System.Rev"] == 1
    assert second["value"] == values[1:2]
    assert missing.status_code == 404


def test_history_pages_follow_mutations_after_warm() -> None:
    with Simulator(seed=7, size=300, anchor=ANCHOR, tenants=("contoso",)) as fresh:
        plain = httpx.post(f"{fresh.url}/_sim/warm", json={}).json()
        warm = httpx.post(f"{fresh.url}/_sim/warm", json={"history": 1000}).json()
        assert warm["rendered"] == plain["rendered"] + 2 * live_items(fresh)
        with ado(fresh) as client:
            ids = [
                w["id"]
                for w in client.post("/Delivery/_apis/wit/wiql", json={"query": WIQL}).json()[
                    "workItems"
                ]
            ]
            before = {
                wid: client.get(f"/Delivery/_apis/wit/workItems/{wid}/revisions").json()["count"]
                for wid in ids
            }
            summary = fresh.mutate(fraction=0.2, seed=5, deletes=0, moves=0)
            changed = {int(u["id"]) for u in summary["updated"]}
            after = {
                wid: client.get(f"/Delivery/_apis/wit/workItems/{wid}/revisions").json()["count"]
                for wid in ids
            }
    assert changed
    assert {w for w in ids if after[w] != before[w]} == changed
    assert all(after[w] == before[w] + 1 for w in changed)


def test_vendor_sdks_run_unchanged_against_the_simulator(
    sim: Simulator, tmp_path, monkeypatch
) -> None:
    jira = pytest.importorskip("jira")
    devops = pytest.importorskip("azure.devops.connection")
    auth = pytest.importorskip("msrest.authentication")
    wit = pytest.importorskip("azure.devops.v7_1.work_item_tracking.models")
    monkeypatch.setenv("AZURE_DEVOPS_CACHE_DIR", str(tmp_path))
    for tenant, user in (("northwind", "pmo@northwind.example"), ("fabrikam", "pmo")):
        client = jira.JIRA(server=sim.base_url(tenant), basic_auth=(user, DEMO_TOKEN))
        found = client.search_issues("ORDER BY created ASC", maxResults=False, expand="changelog")
        p = sim.portfolio
        lo, hi = p.tenant_range(p.tenants.index(tenant))
        assert len(found) == int((~p.deleted[lo:hi]).sum())
        assert any(issue.changelog.histories for issue in found)
    connection = devops.Connection(
        base_url=sim.base_url("contoso"), creds=auth.BasicAuthentication("", DEMO_TOKEN)
    )
    tracker = connection.clients_v7_1.get_work_item_tracking_client()
    result = tracker.query_by_wiql(
        wit.Wiql(query=WIQL), team_context=wit.TeamContext(project="Delivery")
    )
    ids = [w.id for w in result.work_items]
    batch = tracker.get_work_items_batch(
        wit.WorkItemBatchGetRequest(ids=ids[:200], expand="relations", error_policy="omit"),
        project="Delivery",
    )
    assert [w.id for w in batch] == ids[:200]
    updates = tracker.get_updates(ids[0], project="Delivery")
    revisions = tracker.get_revisions(ids[0], project="Delivery")
    assert len(updates) == len(revisions) == batch[0].rev
    assert revisions[-1].fields["System.State"] == batch[0].fields["System.State"]
