from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import httpx
import respx
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.api.runtime import make_runtime
from pmolens.connectors.http import TrackerClient
from pmolens.pipeline.manager import AlreadySyncing, SyncManager
from pmolens.pipeline.schedule import SyncScheduler
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.api.conftest import OPERATOR, VIEWER, auth
from tests.connectors.fake_jira import BASE, FakeJira


def jira_settings(tmp_path, schedule="*/10 * * * *"):
    return settings_from_dict(
        {
            "warehouse": {"path": str(tmp_path / "s.duckdb")},
            "server": {
                "tokens": [
                    {"role": "operator", "env": "TEST_OPERATOR_TOKEN"},
                    {"role": "viewer", "env": "TEST_VIEWER_TOKEN"},
                ]
            },
            "sources": [
                {
                    "name": "fk",
                    "kind": "jira_cloud",
                    "organisation": "Fake",
                    "base_url": BASE,
                    "email": "a@b.example",
                    "token_env": "FK_TOKEN",
                    "jql": "project = FK",
                    "schedule": schedule,
                }
            ],
        }
    )


def test_second_sync_of_a_busy_source_is_409(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    settings = jira_settings(tmp_path)
    gate = threading.Event()
    fake = FakeJira(count=3)

    async def slow(request: httpx.Request) -> httpx.Response:
        while not gate.is_set():  # hold the first sync open until the test lets go
            await asyncio.sleep(0.01)
        with respx.mock(assert_all_called=False) as router:
            fake.mount(router)
            async with httpx.AsyncClient() as inner:
                return await inner.send(request)

    runtime = make_runtime(settings)
    runtime.syncs.client_factory = lambda config: TrackerClient(
        config.base_url, transport=httpx.MockTransport(slow), sleep=_no_sleep
    )
    with TestClient(create_app(runtime)) as client:
        first = client.post("/sync", headers=auth(OPERATOR), json={"sources": ["fk"]})
        assert first.status_code == 202
        run_id = first.json()["runs"][0]["run_id"]
        assert first.json()["runs"][0]["outcome"] == "running"
        second = client.post("/sync", headers=auth(OPERATOR), json={})
        assert second.status_code == 409 and "fk" in second.json()["detail"]
        gate.set()
        for _ in range(500):
            run = client.get(f"/sync-runs/{run_id}", headers=auth(VIEWER)).json()
            if run["outcome"] != "running":
                break
            threading.Event().wait(0.02)
        assert run["outcome"] == "success" and run["items"] == 3
        # results were refreshed for the new generation
        health = client.get("/health").json()
        assert health["generation"] == run_id and health["syncing"] == []
    runtime.warehouse.close()


async def _no_sleep(seconds: float) -> None:
    return None


class FakeManager:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.busy: set[str] = set()

    def start(self, sources, *, full=False):
        if set(sources) & self.busy:
            raise AlreadySyncing(sorted(set(sources) & self.busy))
        self.started += sources
        return [len(self.started)]


def test_scheduler_fires_on_cron_and_coalesces_missed_runs(tmp_path):
    now = [datetime(2026, 11, 22, 10, 3, tzinfo=UTC)]
    manager = FakeManager()
    scheduler = SyncScheduler(jira_settings(tmp_path), manager, clock=lambda: now[0])  # type: ignore[arg-type]
    assert scheduler.next_fire["fk"] == datetime(2026, 11, 22, 10, 10, tzinfo=UTC)
    assert scheduler.tick() == []
    now[0] = datetime(2026, 11, 22, 10, 10, tzinfo=UTC)
    assert scheduler.tick() == ["fk"]
    # the server was busy for 45 minutes: four missed fire times become one run
    now[0] += timedelta(minutes=45)
    assert scheduler.tick() == ["fk"]
    assert scheduler.tick() == []
    assert manager.started == ["fk", "fk"]
    assert scheduler.next_fire["fk"] == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    # one sync per source at a time: a busy source is skipped, not queued twice
    manager.busy.add("fk")
    now[0] = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    assert scheduler.tick() == [] and scheduler.skipped == ["fk"]


def test_scheduler_runs_are_recorded_and_failures_isolated(tmp_path):
    settings = settings_from_dict(
        {
            "warehouse": {"path": str(tmp_path / "r.duckdb")},
            "sources": [
                jira_settings(tmp_path).sources[0].model_dump(),
                {
                    **jira_settings(tmp_path).sources[0].model_dump(),
                    "name": "broken",
                    "base_url": "https://broken.example",
                },
            ],
        }
    )
    now = [datetime(2026, 11, 22, 10, 10, tzinfo=UTC)]
    fake = FakeJira(count=2)

    async def scenario() -> None:
        with (
            Warehouse(settings.warehouse_path) as warehouse,
            respx.mock(assert_all_called=False) as router,
        ):
            fake.mount(router)
            router.route(host="broken.example").mock(return_value=httpx.Response(500))
            manager = SyncManager(
                warehouse,
                settings,
                client_factory=lambda c: TrackerClient(c.base_url, sleep=_no_sleep, max_retries=1),
            )
            scheduler = SyncScheduler(
                settings, manager, clock=lambda: now[0] - timedelta(minutes=1)
            )
            assert scheduler.tick() == []
            scheduler.clock = lambda: now[0]
            assert sorted(scheduler.tick()) == ["broken", "fk"]
            await manager.wait()
            runs = warehouse.query("SELECT source, outcome, items FROM sync_runs ORDER BY source")
            assert runs.rows() == [("broken", "failed", None), ("fk", "success", 2)]

    asyncio.run(scenario())


def test_a_failed_results_refresh_is_kept_and_shown_not_lost(tmp_path, monkeypatch):
    """The sync commits; the refresh after it fails: /health says degraded and why (to a viewer),
    the next good refresh clears it."""
    import pmolens.pipeline.manager as manager

    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    settings = jira_settings(tmp_path)
    runtime = make_runtime(settings)
    real_refresh = manager.refresh

    def broken(warehouse, settings, as_of=None):
        raise ValueError("analytics.flow: cannot compute\nsecond line")

    monkeypatch.setattr(manager, "refresh", broken)
    with TestClient(create_app(runtime)) as client:
        asyncio.run(runtime.syncs.refresh())
        assert runtime.syncs.refresh_error == "ValueError: analytics.flow: cannot compute"
        anonymous = client.get("/health").json()
        assert anonymous["status"] == "degraded" and anonymous["results_stale"] is True
        assert anonymous["results_error"] is None
        viewer = client.get("/health", headers=auth(VIEWER)).json()
        assert viewer["results_error"] == "ValueError: analytics.flow: cannot compute"
        monkeypatch.setattr(manager, "refresh", real_refresh)
        asyncio.run(runtime.syncs.refresh())
        healthy = client.get("/health").json()
        assert healthy["results_stale"] is False and healthy["status"] == "ok"
    runtime.warehouse.close()
