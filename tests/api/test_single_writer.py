"""`pmolens serve` and `pmolens sync` at the same time: the CLI hands the sync to the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import respx
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pmolens.api.app import create_app
from pmolens.api.cli import app as cli
from pmolens.api.handoff import running_server
from pmolens.api.runtime import make_runtime
from pmolens.connectors.http import TrackerClient
from pmolens.warehouse.config import load_settings
from pmolens.warehouse.store import Warehouse
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
    from pmolens.warehouse.config import load_settings

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
            [sys.executable, "-m", "pmolens.api.cli", "sync", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        stop.set()
        reader.join()
        status = subprocess.run(
            [sys.executable, "-m", "pmolens.api.cli", "status", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        server.should_exit = True
        thread.join(timeout=10)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "handing the sync to it" in cli.stdout and "complete" in cli.stdout
    assert "lock" not in (cli.stdout + cli.stderr).lower()
    assert status.returncode == 0 and "owns the warehouse" in status.stdout
    assert reader_errors == []
    assert not claim.exists()  # released at shutdown
    count = runtime.warehouse.query("SELECT count(*) AS n FROM work_items")["n"][0]
    assert count == 40
    runtime.warehouse.close()


# ------------------------------------------------------------ stale claims, vanished servers

CONFIG = f"""
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


def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("FK_TOKEN", "fk-token-0123456789")
    config = tmp_path / "pmolens.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def _claim(tmp_path, **claim) -> None:
    (tmp_path / "w.duckdb.server.json").write_text(json.dumps(claim), encoding="utf-8")


@pytest.mark.parametrize(
    "case", ["own pid, dead port", "sleep pid, dead port", "dead pid", "other"]
)
def test_a_stale_claim_is_ignored_and_the_sync_runs_here(tmp_path, monkeypatch, case):
    """The pid of a claim may be reused by any process, its port by any server: only a server
    that answers /health with the claim's instance id owns the warehouse."""
    config = _config(tmp_path, monkeypatch)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        if case == "dead pid":
            dead = subprocess.Popen(["true"])
            dead.wait()
            pid = dead.pid
        else:
            pid = sleeper.pid if case.startswith("sleep") else os.getpid()
        _claim(tmp_path, url=url, pid=pid, instance="the-instance-that-wrote-the-claim")
        with respx.mock(assert_all_called=False) as router:
            FakeJira(count=12, page=5).mount(router)
            if case == "other":  # a live server answers there, but as someone else
                router.get(f"{url}/health").respond(json={"status": "ok", "instance": "another"})
            router.route(host="127.0.0.1").pass_through()
            result = CliRunner().invoke(cli, ["sync", "--config", str(config)])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.exit_code == 0, result.output
    assert "handing the sync" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "w.duckdb.server.json").exists()  # the stale claim is gone
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        assert warehouse.query("SELECT count(*) AS n FROM work_items")["n"][0] == 12


def test_a_claim_is_trusted_when_its_server_answers_as_itself_and_serve_replaces_a_stale_one(
    tmp_path, monkeypatch
):
    config = _config(tmp_path, monkeypatch)
    settings = load_settings(config)
    _claim(tmp_path, url="http://127.0.0.1:9", pid=os.getpid(), instance="stale")
    runtime = make_runtime(settings)
    url = "http://127.0.0.1:8765"
    try:
        with TestClient(create_app(runtime, claim_url=url)) as client:
            claim = json.loads((tmp_path / "w.duckdb.server.json").read_text())
            assert claim == {"url": url, "pid": os.getpid(), "instance": runtime.instance}
            assert client.get("/health").json()["instance"] == runtime.instance
            with respx.mock() as router:
                router.get(f"{url}/health").mock(
                    side_effect=lambda request: httpx.Response(
                        200, json=client.get("/health").json()
                    )
                )
                assert running_server(settings) == claim
        assert not (tmp_path / "w.duckdb.server.json").exists()  # released at shutdown
    finally:
        runtime.warehouse.close()


@pytest.mark.parametrize(
    ("error", "when"),
    [
        (httpx.ReadError, "during the sync"),
        (httpx.ConnectError, "during the sync"),
        (httpx.RemoteProtocolError, "during the sync"),
        (httpx.ReadError, "before the sync started"),
    ],
)
def test_a_server_that_vanishes_mid_handoff_is_one_line_and_a_failure(
    tmp_path, monkeypatch, error, when
):
    config = _config(tmp_path, monkeypatch)
    url = f"http://127.0.0.1:{free_port()}"
    _claim(tmp_path, url=url, pid=os.getpid(), instance="ours")
    run = {"run_id": 7, "source": "fk", "outcome": "running"}
    with respx.mock() as router:
        router.get(f"{url}/health").respond(json={"instance": "ours"})
        if when == "during the sync":
            router.post(f"{url}/sync").respond(202, json={"runs": [run]})
            router.get(f"{url}/sync-runs/7").mock(side_effect=error("connection lost"))
        else:
            router.post(f"{url}/sync").mock(side_effect=error("connection lost"))
        result = CliRunner().invoke(cli, ["sync", "--config", str(config)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if "stopped answering" in line]
    assert len(lines) == 1, result.output
    assert f"stopped answering {when} ({error.__name__})" in lines[0]
    assert (tmp_path / "w.duckdb.server.json").exists()  # a live server's claim is left alone


def test_runs_left_running_by_a_dead_process_are_abandoned_when_the_server_starts(
    tmp_path, monkeypatch
):
    """A process killed mid-run leaves its run `running`; the next server marks it abandoned,
    and so does the next run of that source."""
    config = _config(tmp_path, monkeypatch)
    settings = load_settings(config)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from warehouse.store import Warehouse\n"
            "w = Warehouse(sys.argv[1])\n"
            "w.begin_run('fk', 'full', None)\n"
            "w.begin_run('other', 'full', None)\n"
            "os._exit(9)  # killed: no close, no cleanup\n",
            str(settings.warehouse_path),
        ],
        timeout=60,
    )
    assert killed.returncode == 9
    runtime = make_runtime(settings)
    try:
        running = runtime.warehouse.query("SELECT count(*) AS n FROM sync_runs")["n"][0]
        assert running == 2
        with TestClient(create_app(runtime)) as client:
            runs = client.get("/sync-runs", headers={"Authorization": f"Bearer {VIEWER}"}).json()
            assert {r["outcome"] for r in runs} == {"abandoned"}
            assert all("stopped before this run finished" in r["error"] for r in runs)
            assert all(r["finished"] is not None for r in runs)
        # and the next run of a source abandons a run of that source left running
        left = runtime.warehouse.begin_run("fk", "full", None)
        runtime.warehouse.begin_run("fk", "full", None)
        outcome = runtime.warehouse.query("SELECT outcome FROM sync_runs WHERE run_id = ?", [left])[
            "outcome"
        ][0]
        assert outcome == "abandoned"
    finally:
        runtime.warehouse.close()
