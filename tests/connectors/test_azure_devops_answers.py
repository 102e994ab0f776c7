"""Validate before acting: a 200 of the wrong shape on any Azure DevOps endpoint fails the run with
one line naming the endpoint, or takes the documented narrow fallback - and never deletes.

Wrong bodies are what gateways and maintenance pages really send under 200: an error object
(``{"errorMessages": ["maintenance"]}``), an HTML page, the right envelope with the wrong inside.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
import respx

from pmolens.connectors.azure_devops import AzureDevOpsConnector
from pmolens.connectors.http import MalformedAnswer
from pmolens.pipeline.sync import SyncError, sync_source
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.connectors.test_azure_devops import (
    FakeAdo,
    client,
    config,
    merged,
    source_dict,
)

MAINTENANCE = {"errorMessages": ["maintenance"]}
HTML = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"
MANY = 40  # more wrong answers than any call (and its halves) asks for


def drive(fake: FakeAdo, what: str = "fetch", since: datetime | None = None, **attrs: Any):
    """Run fetch (all batches) or live_ids; returns (result or exception, unretrieved errors)."""
    unretrieved: list[dict[str, Any]] = []

    async def go() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unretrieved.append(ctx))
        try:
            async with client() as http:
                ado = AzureDevOpsConnector(config(), http)
                for name, value in attrs.items():
                    setattr(ado, name, value)
                if what == "live_ids":
                    return await ado.live_ids()
                return [batch async for batch in ado.fetch(since)]
        except Exception as exc:
            return exc
        finally:
            await asyncio.sleep(0)
            gc.collect()
            await asyncio.sleep(0)

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        outcome = asyncio.run(go())
    gc.collect()
    return outcome, unretrieved


def assert_malformed(outcome: Any, unretrieved: list[Any], endpoint: str) -> None:
    assert isinstance(outcome, MalformedAnswer), outcome
    message = str(outcome)
    assert "\n" not in message
    assert endpoint in message, message
    assert "3 answers in a row" in message
    assert unretrieved == []  # no "Task exception was never retrieved"


FAILING = [
    # (route in the fake, wrong body under 200, endpoint named, what is called)
    ("wiql", MAINTENANCE, "POST /Fabrikam-Fiber/_apis/wit/wiql", "fetch"),
    ("wiql", MAINTENANCE, "POST /Fabrikam-Fiber/_apis/wit/wiql", "live_ids"),
    ("wiql", HTML, "POST /Fabrikam-Fiber/_apis/wit/wiql", "live_ids"),
    ("wiql", {"workItems": "none"}, "/_apis/wit/wiql", "live_ids"),
    ("wiql", {"workItems": [{"url": "x"}]}, "/_apis/wit/wiql", "live_ids"),
    ("wiql", {"count": 0, "value": []}, "/_apis/wit/wiql", "fetch"),
    ("batch", MAINTENANCE, "POST /_apis/wit/workitemsbatch (ids 100..104)", "fetch"),
    ("batch", HTML, "POST /_apis/wit/workitemsbatch", "fetch"),
    ("batch", {"count": 1, "value": "none"}, "POST /_apis/wit/workitemsbatch", "fetch"),
    ("states", MAINTENANCE, "/_apis/wit/workitemtypes/", "fetch"),
    ("states", {"count": 1, "value": [{"category": "Proposed"}]}, "/states", "fetch"),
    ("categories", MAINTENANCE, "GET /Fabrikam-Fiber/_apis/wit/workitemtypecategories", "fetch"),
    ("categories", {"value": [{"name": "Epics"}]}, "/workitemtypecategories", "fetch"),
    ("process", HTML, "GET /Fabrikam-Fiber/_apis/work/processconfiguration", "fetch"),
    ("teams", MAINTENANCE, "GET /_apis/projects/Fabrikam-Fiber/teams", "fetch"),
    ("iterations", MAINTENANCE, "/_apis/work/teamsettings/iterations", "fetch"),
    ("iterations", {"value": ["Sprint 1"]}, "/_apis/work/teamsettings/iterations", "fetch"),
]


@pytest.mark.parametrize(("route", "body", "endpoint", "what"), FAILING)
def test_a_wrong_shaped_200_fails_the_run_with_one_line(route, body, endpoint, what):
    fake = FakeAdo.from_fixtures()
    fake.odd = {route: [body] * MANY}
    outcome, unretrieved = drive(fake, what)
    assert_malformed(outcome, unretrieved, endpoint)


def test_one_wrong_answer_is_asked_again_and_the_run_goes_on():
    fake = FakeAdo.from_fixtures()
    fake.odd = {
        "wiql": [MAINTENANCE],
        "batch": [HTML],
        "categories": [MAINTENANCE],
        "iterations": [{"values": "x"}],
    }
    outcome, unretrieved = drive(fake)
    assert not isinstance(outcome, Exception), outcome
    whole = merged(outcome)
    assert len(whole.work_items) == 5 and len(whole.status_changes) == 9
    assert len({s["sprint_id"] for s in whole.sprints}) == 4
    assert any("workitemsbatch" in p and "attempt 1 of 3" in p for p in whole.problems)
    assert unretrieved == []


def test_an_unreadable_revisions_feed_falls_back_to_updates_per_item():
    fake = FakeAdo.from_fixtures()
    fake.odd = {"feed": [{"values": "gone"}] * MANY}
    outcome, unretrieved = drive(fake)
    assert not isinstance(outcome, Exception), outcome
    whole = merged(outcome)
    assert sorted(fake.update_calls) == [100, 101, 102, 103, 104]
    assert len(whole.status_changes) == 9 and whole.history_missing == []
    assert any(
        "GET /Fabrikam-Fiber/_apis/wit/reporting/workitemrevisions" in p
        and p.endswith("(3 answers in a row); history read per item instead")
        for p in whole.problems
    )
    assert unretrieved == []


def test_unreadable_updates_keep_the_stored_history_of_that_item():
    fake = FakeAdo.from_fixtures()
    fake.odd = {"updates": [MAINTENANCE] * 3}  # the first item asked for: all its attempts
    since = datetime(2026, 4, 22, 17, 30, tzinfo=UTC)
    outcome, _ = drive(fake, since=since)
    whole = merged(outcome)
    assert len(whole.work_items) == 2 and len(whole.history_missing) == 1
    assert any(p.endswith("kept") and "/updates" in p for p in whole.problems)


def test_one_unreadable_item_in_a_valid_answer_is_skipped_alone():
    fake = FakeAdo.from_fixtures()
    fake.items[101] = {"id": 101, "rev": 2, "fields": "oops"}
    outcome, _ = drive(fake)
    whole = merged(outcome)
    assert sorted(r["native_id"] for r in whole.work_items) == ["100", "102", "103", "104"]
    assert len(fake.batch_sizes) == 1  # no asking again: the envelope was fine
    assert [p for p in whole.problems if "101" in p] == [
        "work item 101 in POST /_apis/wit/workitemsbatch: not in the expected shape "
        "(fields: expected object, got str); skipped this run"
    ]


# ------------------------------------------------------------------- through the warehouse


def sync(wh: Warehouse, fake: FakeAdo, *, full: bool = False) -> Any:
    settings = settings_from_dict({"sources": [source_dict()]})

    async def go() -> Any:
        return await sync_source(wh, settings, settings.sources[0], full=full, client=client())

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        return asyncio.run(go())


def snapshot(wh: Warehouse) -> dict[str, pl.DataFrame]:
    return {
        name: wh.query(f"SELECT * FROM {name} ORDER BY ALL")
        for name in ("work_items", "links", "sprints", "status_changes", "cursors")
    }


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "t.duckdb") as warehouse:
        yield warehouse


@pytest.mark.parametrize(
    ("route", "body", "named"),
    [
        ("wiql", MAINTENANCE, "/_apis/wit/wiql"),
        ("wiql", HTML, "/_apis/wit/wiql"),
        ("wiql", {"workItems": [{"id": "x"}]}, "/_apis/wit/wiql"),
        ("batch", MAINTENANCE, "/_apis/wit/workitemsbatch"),
        ("iterations", {"value": "none"}, "teamsettings/iterations"),
        ("states", HTML, "/states"),
        ("categories", MAINTENANCE, "workitemtypecategories"),
    ],
)
def test_a_wrong_shaped_answer_deletes_nothing_and_fails_the_run(wh, route, body, named):
    fake = FakeAdo.from_fixtures()
    sync(wh, fake, full=True)
    before = snapshot(wh)
    fake.odd = {route: [body] * MANY}
    with pytest.raises(SyncError) as failed:
        sync(wh, fake, full=True)
    gc.collect()
    assert all(before[name].equals(snapshot(wh)[name]) for name in before)
    assert wh.query("SELECT count(*) AS n FROM work_items WHERE NOT is_deleted")["n"][0] == 5
    runs = wh.query("SELECT outcome, error FROM sync_runs ORDER BY started")
    assert runs["outcome"].to_list()[-1] == "failed"
    error = runs["error"].to_list()[-1]
    assert "\n" not in error and named in error and "3 answers in a row" in error
    assert "AttributeError" not in str(failed.value)


def test_an_unreadable_feed_deletes_nothing_and_the_run_succeeds(wh):
    fake = FakeAdo.from_fixtures()
    sync(wh, fake, full=True)
    before = snapshot(wh)
    fake.odd = {"feed": [MAINTENANCE] * MANY}
    result = sync(wh, fake, full=True)
    assert result.items == 5
    after = snapshot(wh)
    for name in ("work_items", "links", "sprints", "status_changes"):
        assert (
            before[name]
            .drop("synced_at", strict=False)
            .equals(after[name].drop("synced_at", strict=False))
        ), name
