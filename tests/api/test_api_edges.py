"""API edges: bounded query values, strict bodies, body guard, short 422s, safe CSV, documented
answers."""

from __future__ import annotations

import io

import httpx
import polars as pl
import pytest

from pmolens.api.deps import ECHO_LIMIT, MAX_BODY, MAX_OFFSET, Format, table
from pmolens.connectors.http import TrackerClient
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.store import Staged
from tests.api.conftest import OPERATOR, VIEWER, auth
from tests.factories import work_items

HUGE = "99999999999999999999999999"
PAGED = [
    "/work-items",
    "/portfolio",
    "/alignment/findings",
    "/impediments",
    "/dependencies",
    "/flow/cycle-time",
]


@pytest.fixture
def quiet_syncs(runtime):
    """Syncs reach a tracker stub that refuses at once: nothing leaves the machine."""
    runtime.syncs.client_factory = lambda config: TrackerClient(
        config.base_url,
        transport=httpx.MockTransport(lambda request: httpx.Response(401)),
        max_retries=0,
    )
    return runtime


def runs(runtime) -> int:
    return runtime.warehouse.query("SELECT count(*) AS n FROM sync_runs")["n"][0]


# ------------------------------------------------------------------ bounded query values


@pytest.mark.parametrize("path", PAGED)
def test_offset_out_of_range_is_422_naming_the_bound(client, path):
    response = client.get(path, headers=auth(VIEWER), params={"offset": HUGE})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "offset"]
    assert error["type"] == "less_than_equal" and str(MAX_OFFSET) in error["msg"]
    response = client.get(path, headers=auth(VIEWER), params={"offset": MAX_OFFSET})
    assert response.status_code == 200 and response.json().get("offset") == MAX_OFFSET


@pytest.mark.parametrize("path", PAGED)
def test_limit_out_of_range_is_422(client, path):
    response = client.get(path, headers=auth(VIEWER), params={"limit": HUGE})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_sync_run_id_out_of_range_is_422(client):
    response = client.get(f"/sync-runs/{HUGE}", headers=auth(VIEWER))
    assert response.status_code == 422
    assert client.get("/sync-runs/999999", headers=auth(VIEWER)).status_code == 404


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/reports/steering", "as_of"),
        ("/flow/throughput", "from"),
        ("/flow/cfd", "to"),
        ("/kpis", "since"),
        ("/forecast/teams", "date"),
    ],
)
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1969-12-31", "2200-01-01"])
def test_days_outside_the_sane_range_are_422_with_the_range(client, path, name, day):
    response = client.get(path, headers=auth(VIEWER), params={name: day})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", name]
    assert "between 1970-01-01 and 2199-12-31" in error["msg"] and day in error["msg"]


@pytest.mark.parametrize(
    ("path", "name"), [("/sync-runs", "since"), ("/work-items", "updated_since")]
)
@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "0", "1.5"])
def test_times_outside_the_range_or_not_iso_are_422(client, path, name, moment):
    response = client.get(path, headers=auth(VIEWER), params={name: moment})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize("day", ["0", "20240101", "1.5"])
def test_a_number_is_not_a_day(client, day):
    """pydantic would read ``0`` as 1970-01-01: only ISO text is a day."""
    response = client.get("/reports/steering", headers=auth(VIEWER), params={"as_of": day})
    assert response.status_code == 422
    assert "ISO 8601" in response.json()["detail"][0]["msg"]


def test_a_day_in_range_still_works(client):
    response = client.get("/reports/steering", headers=auth(VIEWER), params={"as_of": "2030-06-30"})
    assert response.status_code == 200
    response = client.get("/flow/throughput", headers=auth(VIEWER), params={"from": "2024-01-01"})
    assert response.status_code == 200


def test_a_single_valued_parameter_given_twice_is_422(client):
    response = client.get("/work-items?team=Web&team=Pay", headers=auth(VIEWER))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "repeated_parameter"


# ----------------------------------------------------------------------- strict bodies


@pytest.mark.parametrize(
    "body",
    [
        {"full": "yes"},
        {"full": 1},
        {"full": "true"},
        {"allow_mass_delete": "yes"},
        {"sources": "nw"},
        {"sources": ["nw"], "fulll": True},
    ],
)
def test_sync_request_is_strict(client, quiet_syncs, body):
    before = runs(quiet_syncs)
    response = client.post("/sync", headers=auth(OPERATOR), json=body)
    assert response.status_code == 422, response.text
    assert runs(quiet_syncs) == before  # nothing started


def test_a_strict_sync_request_still_starts_a_sync(client, quiet_syncs):
    response = client.post("/sync", headers=auth(OPERATOR), json={"sources": ["nw"], "full": True})
    assert response.status_code == 202, response.text
    assert [run["source"] for run in response.json()["runs"]] == ["nw"]


# -------------------------------------------------------------------------- body guard

BIG = b"x" * (50 * 1024 * 1024)


@pytest.mark.parametrize("headers", [{}, auth("wrong-token")])
def test_an_unauthenticated_big_body_is_401_before_it_is_parsed(client, headers):
    response = client.post(
        "/sync", headers={**headers, "Content-Type": "application/json"}, content=BIG
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_viewer_body_to_an_operator_route_is_403_before_it_is_parsed(client):
    response = client.post("/sync", headers=auth(VIEWER), content=b"{not json")
    assert response.status_code == 403


def test_a_body_above_the_limit_is_413(client, quiet_syncs):
    before = runs(quiet_syncs)
    body = b'{"sources": ["' + b"n" * MAX_BODY + b'"]}'
    response = client.post(
        "/sync", headers={**auth(OPERATOR), "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 413
    assert runs(quiet_syncs) == before


def test_a_chunked_body_is_counted_and_cut_off(client, quiet_syncs):
    def chunks():
        yield b'{"sources": ["'
        for _ in range(20):
            yield b"n" * (128 * 1024)
        yield b'"]}'

    response = client.post(
        "/sync", headers={**auth(OPERATOR), "Content-Type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413


def test_a_public_route_takes_a_body_without_a_token(client):
    assert client.request("GET", "/health", content=b"{}").status_code == 200


def test_without_auth_a_body_needs_no_token(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from pmolens.api.app import create_app
    from pmolens.api.runtime import make_runtime
    from tests.api.conftest import chain_settings

    runtime = make_runtime(chain_settings(tmp_path, auth="none"))
    try:
        with TestClient(create_app(runtime)) as c:
            response = c.post("/sync", json={"full": "yes"})
            assert response.status_code == 422  # parsed (no token needed), then refused
            assert c.post("/sync", content=b"x" * (MAX_BODY + 1)).status_code == 413
    finally:
        runtime.warehouse.close()


# ----------------------------------------------------------------- what a 422 echoes


def _longest_string(value) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max([_longest_string(v) for v in value.values()] + [0])
    if isinstance(value, list):
        return max([_longest_string(v) for v in value] + [0])
    return len(str(value))


def test_a_422_echoes_only_a_short_prefix_of_a_query_value(client):
    sent = "x" * 10_000
    response = client.get("/work-items", headers=auth(VIEWER), params={"level": sent})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["input"] == "x" * ECHO_LIMIT + "…"
    assert len(response.text) < 1_000


def test_a_422_echoes_only_a_short_prefix_of_a_body_value(client):
    body = {"sources": ["s" * 100_000], "full": "y" * 100_000}
    response = client.post("/sync", headers=auth(OPERATOR), json=body)
    assert response.status_code == 422
    assert _longest_string(response.json()) <= ECHO_LIMIT + 1
    assert len(response.text) < 2_000


def test_a_422_echoes_only_a_short_prefix_of_an_unknown_key(client):
    response = client.post("/sync", headers=auth(OPERATOR), json={"k" * 50_000: True})
    assert response.status_code == 422 and len(response.text) < 1_000
    response = client.get("/work-items", headers=auth(VIEWER), params={"q" * 50_000: "1"})
    assert response.status_code == 422 and len(response.text) < 1_000


def test_refusals_naming_what_was_sent_are_short(client):
    response = client.post("/sync", headers=auth(OPERATOR), json={"sources": ["n" * 50_000]})
    assert response.status_code == 422 and len(response.text) < 1_000
    response = client.get(f"/teams/{'t' * 5_000}/scrum-of-scrums", headers=auth(VIEWER))
    assert response.status_code == 404 and len(response.text) < 1_000


# ------------------------------------------------------------------------ CSV formulas

DANGEROUS = ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']


def test_csv_export_neutralises_formula_cells_and_keeps_numbers():
    frame = pl.DataFrame(
        {
            "title": [*DANGEROUS, "plain", "a=b", None],
            "estimate": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, None],
            "labels": [["=x"], ["ok"], [], ["-y"], ["a"], ["b"], ["c"], ["d"], ["e"], None],
        }
    )
    response = table(frame, Format.csv, "t")
    assert response is not None
    back = pl.read_csv(io.BytesIO(response.body))
    assert back["title"].to_list() == [*("'" + v for v in DANGEROUS), "plain", "a=b", None]
    assert back["estimate"].to_list() == frame["estimate"].to_list()  # numbers stay numbers
    assert back["labels"][0] == "'=x" and back["labels"][3] == "'-y" and back["labels"][1] == "ok"


def test_parquet_export_stays_raw():
    frame = pl.DataFrame({"title": DANGEROUS, "estimate": [-1.0] * len(DANGEROUS)})
    response = table(frame, Format.parquet, "t")
    assert response is not None
    assert pl.read_parquet(io.BytesIO(response.body)).equals(frame)


def test_work_items_csv_neutralises_a_hostile_title(client, runtime, settings):
    items = work_items(
        {
            "item_id": "nw:9",
            "source": "nw",
            "key": "NW-9",
            "team": "Web",
            "organisation": "Northwind",
            "title": '=HYPERLINK("http://evil.example","click")',
            "estimate": -2.0,
        }
    )
    run_id = runtime.warehouse.begin_run("nw", "incremental", None)
    runtime.warehouse.commit_sync(
        run_id, "nw", Staged(work_items=[items]), live_ids=None, cursor=None
    )
    refresh(runtime.warehouse, settings)
    csv = client.get("/work-items", headers=auth(VIEWER), params={"format": "csv"})
    rows = pl.read_csv(io.BytesIO(csv.content)).filter(pl.col("key") == "NW-9")
    assert rows["title"][0] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows["estimate"][0] == -2.0
    parquet = client.get("/work-items", headers=auth(VIEWER), params={"format": "parquet"})
    raw = pl.read_parquet(io.BytesIO(parquet.content)).filter(pl.col("key") == "NW-9")
    assert raw["title"][0].startswith("=HYPERLINK")


# ----------------------------------------------------------------- documented answers


@pytest.fixture
def openapi(client):
    return client.get("/openapi.json").json()


def test_openapi_documents_auth_and_refusals(openapi):
    paths = openapi["paths"]
    assert set(paths["/sync"]["post"]["responses"]) >= {"202", "401", "403", "409", "413", "422"}
    assert set(paths["/sync-runs/{run_id}"]["get"]["responses"]) >= {"200", "401", "404", "422"}
    assert "403" not in paths["/work-items"]["get"]["responses"]  # any token is a viewer
    assert set(paths["/work-items"]["get"]["responses"]) >= {"200", "401", "422"}
    health = paths["/health"]["get"]
    assert "401" not in health["responses"] and {} in health.get("security", [{}])
    for path, operations in paths.items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "422" in answers, (method, path)
            schema = answers["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationProblem"}
    assert "Problem" in openapi["components"]["schemas"]


def test_openapi_documents_table_media_types(openapi):
    ok = openapi["paths"]["/work-items"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/vnd.apache.parquet"} <= set(ok)
    tables = [
        path
        for path, operations in openapi["paths"].items()
        if any(p["name"] == "format" for p in operations.get("get", {}).get("parameters", []))
    ]
    assert len(tables) > 20
    for path in tables:
        assert "text/csv" in openapi["paths"][path]["get"]["responses"]["200"]["content"], path


def test_openapi_documents_the_bounds(openapi):
    params = {p["name"]: p for p in openapi["paths"]["/work-items"]["get"]["parameters"]}
    assert params["offset"]["schema"]["maximum"] == MAX_OFFSET
    assert params["limit"]["schema"]["maximum"] == 10_000
    steering = {p["name"]: p for p in openapi["paths"]["/reports/steering"]["get"]["parameters"]}
    as_of = steering["as_of"]["schema"]["anyOf"][0]
    assert as_of["format"] == "date" and as_of["pattern"].startswith("^(19[7-9]")
