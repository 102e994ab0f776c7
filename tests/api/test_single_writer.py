"""`pmolens serve` and `pmolens sync` at the same time: the CLI hands the sync to the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import respx
import uvicorn

from api.app import create_app
from api.runtime import make_runtime
from connectors.http import TrackerClient
from tests.api.conftest import OPERATOR, VIEWER
from tests.api.test_sync_and_schedule import _no_sleep
from tests.connectors.fake_jira import BASE, FakeJira


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_sync_while_server_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    config = tmp_path / "pmolens.toml"
    config.write_text(
        f"""
[warehouse]
path = "w.duckdb"
[server]
tokens = [{{ role = "viewer", env = "TEST_VIEWER_TOKEN" }}, {{ role = "operator", env = "TEST_OPERATOR_TOKEN" }}]
[[sources]]
name = "fk"
kind = "jira_cloud"
organisation = "Fake"
base_url = "{BASE}"
email = "a@b.example"
token_env = "FK_TOKEN"
jql = "project = FK"
"""
    )
    from warehouse.config import load_settings

    settings = load_settings(config)
    runtime = make_runtime(settings)
    runtime.syncs.client_factory = lambda c: TrackerClient(c.base_url, sleep=_no_sleep)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, claim_url=url), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    fake = FakeJira(count=40, page=7)
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        router.route(host="127.0.0.1").pass_through()
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        claim = tmp_path / "w.duckdb.server.json"
        assert claim.exists()
        reader_errors: list[str] = []
        stop = threading.Event()

        def read_while_syncing() -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {VIEWER}"}) as c:
                while not stop.is_set():
                    r = c.get("/work-items", params={"limit": 5})
                    if r.status_code != 200:
                        reader_errors.append(r.text)
                    total = r.json()["total"]
                    if total not in (0, 40):  # a sync is seen entirely or not at all
                        reader_errors.append(f"half a sync visible: {total}")

        reader = threading.Thread(target=read_while_syncing)
        reader.start()
        env = {**os.environ, "TEST_OPERATOR_TOKEN": OPERATOR}
        cli = subprocess.run(
            [sys.executable, "-m", "api.cli", "sync", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        stop.set()
        reader.join()
        status = subprocess.run(
            [sys.executable, "-m", "api.cli", "status", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        server.should_exit = True
        thread.join(timeout=10)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "handing the sync to it" in cli.stdout and "success" in cli.stdout
    assert "lock" not in (cli.stdout + cli.stderr).lower()
    assert status.returncode == 0 and "owns the warehouse" in status.stdout
    assert reader_errors == []
    assert not claim.exists()  # released at shutdown
    count = runtime.warehouse.query("SELECT count(*) AS n FROM work_items")["n"][0]
    assert count == 40
    runtime.warehouse.close()
