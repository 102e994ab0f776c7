"""The lake kind end to end, on a real PostgreSQL (tests/lake/conftest.py) and the simulated chain:
sync workers as separate `pmolens sync --source X` processes, `pmolens serve` replicas, kill -9.

Every test gets its own empty lake (a fresh database and data directory), so the tests do not
depend on each other's order. The reference for "what a sync must land" is the same chain synced
into a DuckDB file in this process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pmolens.api.demo import write_config
from pmolens.pipeline.sync import sync_all
from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings
from pmolens.warehouse.config import Settings, load_settings
from pmolens.warehouse.store import Warehouse
from tests.lake.conftest import PASSWORD_ENV, LakeDatabase, PostgresServer, free_port

SIZE = 500
SOURCES = ("northwind-jira", "fabrikam-jira-dc", "contoso-ado")
COUNTS = "SELECT source, count(*) AS n FROM work_items WHERE NOT is_deleted GROUP BY source"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, size=SIZE) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def expected(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Live items per source after a full sync of the chain into a DuckDB file."""
    os.environ[TOKEN_ENV] = DEMO_TOKEN
    data = demo_settings(sim.url)
    data["warehouse"] = {"path": str(tmp_path_factory.mktemp("file") / "reference.duckdb")}
    from pmolens.warehouse.config import settings_from_dict

    settings = settings_from_dict(data)
    with Warehouse.open(settings) as warehouse:
        assert all(o.ok for o in asyncio.run(sync_all(warehouse, settings, full=True)))
        return dict(warehouse.query(COUNTS).iter_rows())


@dataclass
class Lake:
    config: Path
    database: LakeDatabase
    postgres: PostgresServer
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return load_settings(self.config)

    def open(self) -> Warehouse:
        return Warehouse.open(self.settings)

    def pmolens(self, *args: str, code: str | None = None) -> subprocess.Popen[str]:
        """`pmolens <args> -c <config>` in its own process (``code``: run first, to patch)."""
        prelude = (code or "") + "\nfrom pmolens.api.cli import app\napp()\n"
        process = subprocess.Popen(
            [sys.executable, "-c", prelude, *args, "-c", str(self.config)],
            env=self.env,
            cwd=self.config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        return process

    def psql(self, sql: str) -> str:
        return self.postgres.psql(sql, self.database.name)


@pytest.fixture
def lake(
    postgres: PostgresServer, lake_database: LakeDatabase, sim: Simulator, tmp_path: Path
) -> Iterator[Lake]:
    data = demo_settings(sim.url)
    data["warehouse"] = {
        "kind": "ducklake",
        "catalog": lake_database.libpq,
        "password_env": PASSWORD_ENV,
        "data_path": "data",
    }
    data["server"] = {"auth": "none", "host": "127.0.0.1"}
    config = tmp_path / "pmolens.toml"
    write_config(data, config)
    os.environ[PASSWORD_ENV] = lake_database.password
    os.environ[TOKEN_ENV] = DEMO_TOKEN
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    made = Lake(config, lake_database, postgres, env)
    yield made
    for process in made.processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def finish(process: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def runs(warehouse: Warehouse) -> list[tuple[str, str]]:
    frame = warehouse.query("SELECT source, outcome FROM sync_runs ORDER BY run_id")
    return list(frame.iter_rows())


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@dataclass
class Readers:
    """Reads /portfolio and /work-items of every replica in a loop while workers commit."""

    urls: list[str]
    expected: dict[str, int]
    stop: threading.Event = field(default_factory=threading.Event)
    answers: int = 0
    problems: list[str] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=dict)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                for url in self.urls:
                    for path in ["/portfolio", *(f"/work-items?source={s}" for s in SOURCES)]:
                        answer = client.get(url + path)
                        self.answers += 1
                        if answer.status_code != 200:
                            self.problems.append(f"{path}: {answer.status_code} {answer.text}")
                            continue
                        if path.startswith("/work-items"):
                            source = path.split("=")[1]
                            total = answer.json()["total"]
                            self.seen.setdefault(source, set()).add(total)
                            if total not in (0, self.expected[source]):  # half of a run
                                self.problems.append(f"{source}: {total} items")


def test_three_workers_commit_side_by_side_while_two_replicas_read(
    lake: Lake, expected: dict[str, int]
) -> None:
    with lake.open():  # migrate once before the processes start
        pass
    ports = [free_port(), free_port()]
    for port in ports:
        lake.pmolens("serve", "--no-scheduler", "--port", str(port))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    for url in urls:
        wait_http(url)
    readers = Readers(urls, expected)
    reading = threading.Thread(target=readers.run, daemon=True)
    reading.start()
    workers = [lake.pmolens("sync", "--source", source) for source in SOURCES]
    outcomes = [finish(worker) for worker in workers]
    # the replicas see every run once its generation is read again (at most a second later)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
        expected[s] in readers.seen.get(s, set()) for s in SOURCES
    ):
        time.sleep(0.3)
    readers.stop.set()
    reading.join(timeout=30)
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert readers.problems == []
    assert readers.answers > 20
    assert all(expected[s] in readers.seen[s] for s in SOURCES), readers.seen
    with lake.open() as warehouse:
        assert dict(warehouse.query(COUNTS).iter_rows()) == expected
        assert sorted(runs(warehouse)) == sorted((s, "success") for s in SOURCES)
        # the results were kept for the last generation, by one refresh at a time
        kept = warehouse.query("SELECT DISTINCT generation FROM results")
        assert kept["generation"].to_list() == [3]


KILL_IN_COMMIT = """
import os, time
import pmolens.warehouse.store as store
_derive = store._derive
def _slow(con, source, patterns):
    _derive(con, source, patterns)
    open(os.environ["PMOLENS_TEST_MARKER"], "w").close()  # everything written, not committed
    time.sleep(120)
store._derive = _slow
"""


def test_a_worker_killed_mid_commit_leaves_nothing_and_the_next_run_converges(
    lake: Lake, expected: dict[str, int], tmp_path: Path
) -> None:
    with lake.open():
        pass
    marker = tmp_path / "in-commit"
    lake.env["PMOLENS_TEST_MARKER"] = str(marker)
    victim = lake.pmolens("sync", "--source", SOURCES[0], code=KILL_IN_COMMIT)
    others = [lake.pmolens("sync", "--source", source) for source in SOURCES[1:]]
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None, finish(victim)
        assert time.monotonic() < deadline, "the worker never reached its commit"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert [finish(worker)[0] for worker in others] == [0, 0]
    with lake.open() as warehouse:
        counts = dict(warehouse.query(COUNTS).iter_rows())
        assert SOURCES[0] not in counts  # nothing of the killed run is visible
        assert counts == {s: expected[s] for s in SOURCES[1:]}
        assert warehouse.last_cursor(SOURCES[0]) is None
        assert (SOURCES[0], "running") in runs(warehouse)
    code, out = finish(lake.pmolens("sync", "--source", SOURCES[0]))
    assert code == 0, out
    with lake.open() as warehouse:
        assert dict(warehouse.query(COUNTS).iter_rows()) == expected
        mine = [outcome for source, outcome in runs(warehouse) if source == SOURCES[0]]
        assert mine == ["abandoned", "success"]


SLOW_READ = """
import os, pathlib
import pmolens.pipeline.sync as sync
_read = sync._read
async def _slow(*args):
    import asyncio
    live = await _read(*args)
    go = pathlib.Path(os.environ["PMOLENS_TEST_MARKER"])
    for _ in range(600):  # still syncing until the test says go (at most a minute)
        if go.exists():
            break
        await asyncio.sleep(0.1)
    return live
sync._read = _slow
"""


def test_a_second_worker_for_the_same_source_is_refused(lake: Lake, tmp_path: Path) -> None:
    go = tmp_path / "go"
    lake.env["PMOLENS_TEST_MARKER"] = str(go)
    with lake.open() as warehouse:
        first = lake.pmolens("sync", "--source", SOURCES[1], code=SLOW_READ)
        deadline = time.monotonic() + 60
        while (SOURCES[1], "running") not in runs(warehouse):
            assert first.poll() is None, finish(first)
            assert time.monotonic() < deadline
            time.sleep(0.2)
        code, out = finish(lake.pmolens("sync", "--source", SOURCES[1]))
        assert code == 1
        assert "already syncing in another process" in " ".join(out.split()), out
        go.touch()
        assert finish(first)[0] == 0
        assert runs(warehouse) == [(SOURCES[1], "success")]  # the refused one recorded nothing


LEADER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'pmolens scheduler%'"
)


def _leader(lake: Lake) -> int | None:
    names = lake.psql(LEADER).split()
    return int(names[-1]) if names else None


def test_the_scheduler_runs_in_one_elected_server_and_moves_when_it_dies(lake: Lake) -> None:
    with lake.open():
        pass
    servers = [lake.pmolens("serve", "--port", str(free_port())) for _ in range(2)]
    deadline = time.monotonic() + 60
    while _leader(lake) is None:
        assert time.monotonic() < deadline, "no leader elected"
        time.sleep(0.2)
    time.sleep(3)  # both candidates have tried by now: still exactly one leader
    assert len(lake.psql(LEADER).split("\n")) == 1
    leader = _leader(lake)
    assert leader in {s.pid for s in servers}
    os.kill(leader, signal.SIGKILL)
    killed = time.monotonic()
    while _leader(lake) in (None, leader):
        assert time.monotonic() - killed < 15, "nobody took over within 15 s"
        time.sleep(0.2)
    assert _leader(lake) in {s.pid for s in servers if s.pid != leader}


def _without_generated(page: str) -> str:
    """The report without the moment it was generated (the one line that must differ) and the
    KPI trend note's moment, which the section prints as a day or a day and time depending on
    how it was read (a known difference, not in the figures)."""
    import re

    page = re.sub(r"Generated: [^<]*· pmolens", "", page)
    return re.sub(r"so far there is one \([^)]*\)", "", page)


def test_as_of_a_past_sync_reads_the_lake_as_it_was_then(
    lake: Lake, expected: dict[str, int], tmp_path: Path
) -> None:
    """A past steering meeting's report and figures come back exactly from the lake's snapshot;
    expire forgets it; a DuckDB copy and a partner's Parquet slice carry the same rows."""
    import polars as pl

    from pmolens.pipeline.refresh import refresh_after_sync
    from pmolens.reports.steering import build_report
    from pmolens.warehouse.results import ResultCache, kept_as_of
    from pmolens.warehouse.transfer import copy_into, expire, export_parquet

    settings = lake.settings
    with lake.open() as warehouse:
        assert all(o.ok for o in asyncio.run(sync_all(warehouse, settings, full=True)))
        refresh_after_sync(warehouse, settings)
        then, _ = kept_as_of(warehouse, warehouse.generation(fresh=True))
        assert then is not None
        report_then = build_report(warehouse, settings, plotly="cdn")
        portfolio_then = ResultCache(warehouse, settings).get("portfolio")
        time.sleep(1.1)  # the next sync lands in a later second
        with warehouse.transaction() as con:  # a later sync: every open story is done now
            con.execute(
                "UPDATE work_items SET status_category = 'done', resolved = now() "
                "WHERE level = 'story' AND status_category <> 'done'"
            )
            con.execute(
                "INSERT INTO sync_runs (run_id, source, mode, started, finished, outcome) "
                "VALUES (99, 'northwind-jira', 'incremental', now(), now(), 'success')"
            )
        refresh_after_sync(warehouse, settings)
        cache = ResultCache(warehouse, settings)
        assert not cache.get("portfolio").equals(portfolio_then)
        assert cache.get("portfolio", as_of=then).equals(portfolio_then)
        again = build_report(warehouse, settings, as_of=then, plotly="cdn")
        assert _without_generated(again) == _without_generated(report_then)

        copy = tmp_path / "copy.toml"
        write_config({"warehouse": {"path": str(tmp_path / "copy.duckdb")}}, copy)
        with Warehouse.open(load_settings(copy)) as file:
            copied = copy_into(warehouse, file)
            assert copied["work_items"] == sum(expected.values())
            assert dict(file.query(COUNTS).iter_rows()) == expected

        written = export_parquet(warehouse, tmp_path / "fabrikam", "Fabrikam")
        items = pl.read_parquet(tmp_path / "fabrikam" / "work_items.parquet")
        assert written["work_items"] == items.height == expected["fabrikam-jira-dc"]
        assert items["organisation"].unique().to_list() == ["Fabrikam"]

        assert warehouse.at(then) is not None
        expire(warehouse, 0)  # keep no snapshot older than now
        assert warehouse.at(then) is None


COMMITTED_RUN = (
    "INSERT INTO sync_runs (run_id, source, mode, started, finished, outcome) "
    "VALUES (?, 'fabrikam-jira-dc', 'incremental', now(), now(), 'success')"
)


def test_workers_committing_side_by_side_share_one_refresh(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' commits close together get one results refresh, not one each: a commit in
    flight when the refresh starts is waited for and refreshed with it, and a round overtaken
    by a commit while it computes writes nothing (the next round covers both)."""
    import pmolens.pipeline.refresh as refreshing

    settings = lake.settings
    written: list[int] = []
    store = refreshing._store_snapshots

    def counted(con, generation, *args):  # one call per refresh that writes its results
        written.append(generation)
        store(con, generation, *args)

    monkeypatch.setattr(refreshing, "_store_snapshots", counted)
    # two warehouses: two lake sessions, as two worker processes have
    with lake.open() as first, lake.open() as second:
        assert all(o.ok for o in asyncio.run(sync_all(first, settings, sources=[SOURCES[0]])))
        holding = threading.Event()

        def commit_slowly() -> None:
            with second.transaction() as con:
                con.execute(COMMITTED_RUN, [101])
                holding.set()
                time.sleep(1.5)  # the other worker's commit is still in flight

        committing = threading.Thread(target=commit_slowly)
        committing.start()
        assert holding.wait(30)
        assert refreshing.refresh_after_sync(first, settings) == 2  # both runs, in one refresh
        committing.join()
        assert refreshing.refresh_after_sync(second, settings) is None  # nothing left to do
        assert written == [2]

        compute = refreshing.compute
        computed: list[str] = []

        def compute_while_a_commit_lands(inputs, names):
            if not computed:
                with second.transaction() as con:
                    con.execute(COMMITTED_RUN, [103])
            computed.extend(names)
            return compute(inputs, names)

        monkeypatch.setattr(refreshing, "compute", compute_while_a_commit_lands)
        monkeypatch.setattr(refreshing, "OVERTAKEN_CHECK", 0.0)  # look after every analysis
        with second.transaction() as con:
            con.execute(COMMITTED_RUN, [102])
        assert refreshing.refresh_after_sync(first, settings) == 4
        assert written == [2, 4]  # generation 3's round was overtaken and wrote nothing
        # ... and stopped after its first analysis; the next round computed every analysis
        assert len(computed) == 1 + len(refreshing.ANALYSES)
        kept = first.query("SELECT DISTINCT generation FROM results")
        assert kept["generation"].to_list() == [4]
