from __future__ import annotations

import io

import polars as pl
import pytest

from tests.api.conftest import OPERATOR, VIEWER, auth


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("GET", "/work-items", {}, 401),
        ("GET", "/work-items", auth("wrong"), 401),
        ("GET", "/work-items", auth(VIEWER), 200),
        ("GET", "/work-items", auth(OPERATOR), 200),
        ("POST", "/sync", {}, 401),
        ("POST", "/sync", auth(VIEWER), 403),
        ("GET", "/health", {}, 200),
    ],
)
def test_auth_matrix(client, method, path, headers, expected):
    response = client.request(method, path, headers=headers, json={"sources": ["nosuch"]})
    assert response.status_code == expected
    if expected in (401, 403):
        body = response.text
        assert VIEWER not in body and OPERATOR not in body and "TEST_" not in body


def test_operator_may_trigger_sync_and_unknown_source_is_422(client):
    response = client.post("/sync", headers=auth(OPERATOR), json={"sources": ["nosuch"]})
    assert response.status_code == 422
    assert "nosuch" in response.json()["detail"]


def test_work_items_filters_and_pagination(client):
    h = auth(VIEWER)
    page = client.get(
        "/work-items", headers=h, params={"organisation": "Northwind", "limit": 2}
    ).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    page2 = client.get(
        "/work-items", headers=h, params={"organisation": "Northwind", "limit": 2, "offset": 2}
    ).json()
    assert [i["key"] for i in page2["items"]] == ["NW-3"]
    done = client.get("/work-items", headers=h, params={"status_category": "done"}).json()
    assert [i["key"] for i in done["items"]] == ["NW-2"]


@pytest.mark.parametrize(
    "params",
    [{"level": "saga"}, {"limit": 0}, {"updated_since": "yesterday"}, {"tean": "Web"}],
)
def test_bad_filters_are_422_with_a_clear_message(client, params):
    response = client.get("/work-items", headers=auth(VIEWER), params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail and all("loc" in d and "msg" in d for d in detail)


def test_filter_values_are_bound_not_formatted(client):
    evil = "x' OR '1'='1"
    page = client.get("/work-items", headers=auth(VIEWER), params={"team": evil}).json()
    assert page["total"] == 0


def test_csv_and_parquet_round_trip(client):
    h = auth(VIEWER)
    json_items = client.get("/work-items", headers=h, params={"limit": 100}).json()["items"]
    csv = client.get("/work-items", headers=h, params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    from_csv = pl.read_csv(io.StringIO(csv.text))
    assert sorted(from_csv["key"].to_list()) == sorted(i["key"] for i in json_items)
    parquet = client.get("/work-items", headers={**h, "Accept": "application/vnd.apache.parquet"})
    from_parquet = pl.read_parquet(io.BytesIO(parquet.content))
    assert from_parquet.height == len(json_items)
    assert from_parquet.filter(pl.col("key") == "NW-3")["estimate"][0] == 5.0


def test_portfolio_progress_per_node_team_and_organisation(client):
    body = client.get("/portfolio", headers=auth(VIEWER)).json()
    nodes = {n["key"]: n for n in body["nodes"]}
    assert nodes["NW-1"]["items_total"] == 2 and nodes["NW-1"]["items_done"] == 1
    assert nodes["NW-1"]["progress_estimate"] == pytest.approx(3 / 8)
    orgs = {r["name"]: r for r in body["by_organisation"]}
    assert orgs["Contoso"]["progress_count"] == 0.0
    only = client.get("/portfolio", headers=auth(VIEWER), params={"organisation": "Contoso"}).json()
    assert [n["key"] for n in only["nodes"]] == ["CO-1"]


def test_portfolio_pages_through_nodes(client):
    h = auth(VIEWER)
    whole = client.get("/portfolio", headers=h).json()
    keys = [n["key"] for n in whole["nodes"]]
    assert whole["total"] == len(keys) >= 2 and whole["offset"] == 0
    pages = [
        client.get("/portfolio", headers=h, params={"limit": 1, "offset": i}).json()
        for i in range(len(keys) + 1)
    ]
    assert [n["key"] for p in pages for n in p["nodes"]] == keys  # every node once, in order
    assert pages[-1]["nodes"] == [] and pages[-1]["total"] == len(keys)
    assert client.get("/portfolio", headers=h, params={"limit": 0}).status_code == 422


def test_sources_organisations_teams_and_health(client):
    h = auth(VIEWER)
    sources = client.get("/sources", headers=h).json()
    assert {s["source"]: s["items"] for s in sources} == {"co": 2, "nw": 3}
    assert {s["source"]: s["schedule"] for s in sources}["nw"] == "*/15 * * * *"
    orgs = {o["organisation"]: o for o in client.get("/organisations", headers=h).json()}
    assert orgs["Northwind"]["teams"] == 2 and orgs["Contoso"]["items"] == 2
    teams = client.get("/teams", headers=h, params={"organisation": "Northwind"}).json()
    assert {t["team"] for t in teams} == {"Web", "App"}
    health = client.get("/health").json()
    assert health["warehouse"] and health["status"] == "ok"
    assert {s["source"] for s in health["sources"]} == {"co", "nw"}


def test_sync_runs_history_filters(client):
    h = auth(VIEWER)
    runs = client.get("/sync-runs", headers=h, params={"source": "co"}).json()
    assert [r["source"] for r in runs] == ["co"] and runs[0]["outcome"] == "success"
    assert client.get("/sync-runs", headers=h, params={"outcome": "exploded"}).status_code == 422
    one = client.get(f"/sync-runs/{runs[0]['run_id']}", headers=h).json()
    assert one["run_id"] == runs[0]["run_id"]
    assert client.get("/sync-runs/99999", headers=h).status_code == 404


def test_openapi_is_the_contract(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/health",
        "/sources",
        "/sync",
        "/sync-runs",
        "/organisations",
        "/teams",
        "/work-items",
        "/portfolio",
    ):
        assert path in spec["paths"], path
    ok = spec["paths"]["/work-items"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert "$ref" in ok
