"""Jira connector + sync + warehouse, end to end over respx (no network)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import polars as pl
import pytest
import respx

from pmolens.connectors.http import TrackerClient
from pmolens.pipeline.sync import SyncError, sync_source
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.connectors.fake_jira import BASE, DC_BASE, FakeJira, issue


def settings(kind: str = "jira_cloud"):
    source = {
        "name": "fk",
        "kind": kind,
        "organisation": "Fake",
        "base_url": BASE if kind == "jira_cloud" else DC_BASE,
        "token_env": "FAKE_JIRA_TOKEN",
        "jql": "project = FK",
        "boards": [1],
    }
    if kind == "jira_cloud":
        source["email"] = "pmo@fake.example"
    return settings_from_dict({"sources": [source]})


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def run(wh: Warehouse, cfg, *, full: bool = False, sleeps: Sleeps | None = None, retries: int = 3):
    config = cfg.sources[0]
    client = TrackerClient(
        config.base_url,
        httpx.BasicAuth("pmo@fake.example", "s3cret-token"),
        sleep=sleeps or Sleeps(),
        max_retries=retries,
    )
    return asyncio.run(sync_source(wh, cfg, config, full=full, client=client))


def snapshot(wh: Warehouse) -> dict[str, pl.DataFrame]:
    return {
        name: wh.query(f"SELECT * FROM {name} ORDER BY ALL")
        for name in ("work_items", "links", "sprints", "status_changes", "cursors")
    }


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "t.duckdb") as warehouse:
        yield warehouse


@pytest.fixture
def fake():
    jira = FakeJira(count=7, page=3)
    with respx.mock(assert_all_called=False) as router:
        jira.mount(router)
        yield jira


def test_full_sync_walks_every_page_and_long_changelogs(wh, fake):
    fake.add(issue(8), history_entries=250)  # beyond 100 entries: two bulkfetch pages and more
    result = run(wh, settings(), full=True)
    assert result.items == 8
    assert fake.calls["search"] >= 3  # 8 ids at 3 a page, plus the reconciliation listing
    items = wh.query("SELECT key FROM work_items ORDER BY native_id")["key"].to_list()
    assert items == [f"FK-{n}" for n in range(1, 9)]
    long = wh.query("SELECT count(*) AS n FROM status_changes WHERE item_id = 'fk:10008'")
    assert long["n"][0] == 250
    runs = wh.query("SELECT outcome, items, mode FROM sync_runs")
    assert runs.row(0) == ("success", 8, "full")


def test_resync_is_idempotent(wh, fake):
    run(wh, settings(), full=True)
    first = snapshot(wh)
    run(wh, settings(), full=True)
    second = snapshot(wh)
    for name in first:
        if name != "cursors":
            assert first[name].equals(second[name]), name


def test_retry_on_429_honours_retry_after_for_get_and_post(wh, fake):
    fake.fail = {"myself": [429], "search": [429, 503], "issues": [429]}
    sleeps = Sleeps()
    run(wh, settings(), sleeps=sleeps)
    # Retry-After: 2 honoured on the GET and both POSTs (the host-wide pause may shave a few ms)
    assert sum(1 for d in sleeps.delays if 1.9 < d <= 2.0) >= 3
    assert wh.query("SELECT count(*) AS n FROM work_items")["n"][0] == 7


def test_give_up_after_retry_bound_leaves_warehouse_untouched(wh, fake):
    run(wh, settings(), full=True)
    before = snapshot(wh)
    fake.fail = {"issues": [503] * 10}
    with pytest.raises(SyncError) as err:
        run(wh, settings(), full=True, retries=2)
    assert "failed after 3 attempts" in str(err.value)
    assert "s3cret" not in str(err.value)
    after = snapshot(wh)
    for name in before:
        assert before[name].equals(after[name]), name
    runs = wh.query("SELECT outcome, error FROM sync_runs ORDER BY run_id")
    assert runs["outcome"].to_list() == ["success", "failed"]
    assert "issue/bulkfetch" in runs["error"][1]


def test_failure_mid_sync_then_resync_loses_and_duplicates_nothing(wh, fake):
    run(wh, settings(), full=True)
    cursor = wh.last_cursor("fk")
    later = datetime(2026, 3, 1, tzinfo=UTC)
    for native in ("10001", "10005"):
        fake.touch(native, later, status="Done")
    fake.add(issue(9, updated=later))
    # the second issue chunk dies: nothing of this run may land, the cursor must not move
    fake.fail = {"changelog": [400]}
    with pytest.raises(SyncError):
        run(wh, settings())
    assert wh.last_cursor("fk") == cursor
    assert wh.query("SELECT count(*) AS n FROM work_items")["n"][0] == 7
    run(wh, settings())
    assert wh.last_cursor("fk") == later
    done = wh.query("SELECT key FROM work_items WHERE status_category = 'done' ORDER BY key")
    assert done["key"].to_list() == ["FK-1", "FK-5"]
    counts = wh.query("SELECT count(*) AS n, count(DISTINCT item_id) AS d FROM work_items")
    assert counts.row(0) == (8, 8)
    dupes = wh.query(
        "SELECT count(*) AS n FROM (SELECT item_id, change_id FROM status_changes "
        "GROUP BY ALL HAVING count(*) > 1)"
    )
    assert dupes["n"][0] == 0


def test_incremental_asks_only_for_changes_with_overlap(wh, fake):
    run(wh, settings(), full=True)
    fake.seen_jql.clear()
    result = run(wh, settings())
    assert any('updated >= "2026/01/01 06:00"' in jql for jql in fake.seen_jql), fake.seen_jql
    # the 60-minute overlap re-reads the last two items (06:00 and 07:00); the upsert absorbs them
    assert result.items == 2
    assert wh.query("SELECT count(*) AS n FROM work_items")["n"][0] == 7


def test_deleted_and_moved_issues_are_reconciled(wh, fake):
    run(wh, settings(), full=True)
    del fake.issues["10003"]
    fake.issues["10004"]["key"] = "NEW-4"
    fake.touch("10004", datetime(2026, 3, 1, tzinfo=UTC))
    result = run(wh, settings())
    assert result.deleted == 1
    rows = wh.query("SELECT native_id, key, is_deleted FROM work_items ORDER BY native_id")
    by_id = {r[0]: (r[1], r[2]) for r in rows.iter_rows()}
    assert by_id["10003"] == ("FK-3", True)
    assert by_id["10004"] == ("NEW-4", False)
    assert rows.height == 7  # same item, new key: no duplicate


def test_links_replace_on_refetch(wh, fake):
    fake.issues["10001"]["fields"]["issuelinks"] = [
        {
            "id": "900",
            "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
            "outwardIssue": {"id": "10002", "key": "FK-2"},
        },
        {
            "id": "901",
            "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
            "outwardIssue": {"id": "99999", "key": "GONE-1"},
        },
    ]
    run(wh, settings(), full=True)
    links = wh.query("SELECT link_id, from_item, to_item, resolved FROM links ORDER BY link_id")
    assert links.rows() == [
        ("900", "fk:10001", "fk:10002", True),
        ("901", "fk:10001", "fk:99999", False),
    ]
    fake.issues["10001"]["fields"]["issuelinks"] = []
    fake.touch("10001", datetime(2026, 3, 1, tzinfo=UTC))
    run(wh, settings())
    assert wh.query("SELECT count(*) AS n FROM links")["n"][0] == 0


def test_data_center_pages_by_start_at(wh):
    jira = FakeJira(count=8, page=3, cloud=False)
    with respx.mock(assert_all_called=False) as router:
        jira.mount(router)
        result = run(wh, settings("jira_dc"), full=True)
    assert result.items == 8
    assert result.status_changes == 16
    assert jira.calls["search"] >= 3


def test_malformed_json_page_is_asked_again_then_fails_cleanly(wh, fake):
    fake.fail = {"issues": [0]}
    run(wh, settings(), full=True)
    assert wh.query("SELECT count(*) AS n FROM work_items")["n"][0] == 7
    before = snapshot(wh)
    fake.fail = {"search": [0, 0, 0]}
    with pytest.raises(SyncError, match="malformed JSON"):
        run(wh, settings(), full=True)
    after = snapshot(wh)
    assert all(before[name].equals(after[name]) for name in before)


def test_odd_field_types_keep_the_item_and_count_the_problem(wh, fake):
    fake.issues["10002"]["fields"]["duedate"] = "soon"
    fake.issues["10002"]["fields"]["created"] = "yesterday"
    fake.issues["10003"]["fields"]["issuelinks"] = [
        {"type": {"name": "Mystery"}, "outwardIssue": {"id": "10001"}}
    ]
    result = run(wh, settings(), full=True)
    assert result.items == 7 and result.problems >= 3
    run_row = wh.query("SELECT outcome, problem_text FROM sync_runs")
    assert run_row["outcome"][0] == "partial"
    text = run_row["problem_text"][0]
    assert "FK-2: field created unreadable" in text and "Mystery" in text
    link = wh.query("SELECT kind, raw_type FROM links")
    assert link.rows() == [("relates", "Mystery")]


def _connector(source: dict, kind: str = "jira_cloud"):
    from pmolens.connectors.jira import JiraConnector

    base = {
        "name": "fk",
        "kind": kind,
        "organisation": "Fake",
        "base_url": BASE if kind == "jira_cloud" else DC_BASE,
        "token_env": "FAKE_JIRA_TOKEN",
    }
    if kind == "jira_cloud":
        base["email"] = "pmo@fake.example"
    cfg = settings_from_dict({"sources": [{**base, **source}]})
    config = cfg.sources[0]
    return cfg, JiraConnector(config, TrackerClient(config.base_url, sleep=Sleeps()))


def test_remote_link_query_without_a_jql_scope_has_no_dangling_and():
    # only Data Center may go without a scope (Cloud requires jql)
    _, connector = _connector({"remote_links_jql": "labels = chain"}, kind="jira_dc")
    assert connector.remote_links_query(None) == "(labels = chain) ORDER BY created ASC, key ASC"
    since = 'updated >= "2026/01/01 06:00"'
    assert connector.remote_links_query(since) == (
        f"{since} AND (labels = chain) ORDER BY created ASC, key ASC"
    )
    _, scoped = _connector({"jql": "project = FK ORDER BY rank", "remote_links_jql": "labels = x"})
    assert scoped.remote_links_query(None) == (
        "(project = FK) AND (labels = x) ORDER BY created ASC, key ASC"
    )


def test_sync_without_a_jql_scope_reads_remote_links_with_valid_jql(wh):
    fake = FakeJira(count=7, page=3, cloud=False)
    cfg, _ = _connector({"remote_links_jql": "labels = chain"}, kind="jira_dc")
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        result = run(wh, cfg, full=True)
    assert result.items == 7
    assert fake.calls["remotelink"] == 7  # the fake matches every issue to the remote-link JQL
    for jql in fake.seen_jql:
        assert not jql.lstrip().upper().startswith(("AND", "(ORDER")), jql
    assert "(labels = chain) ORDER BY created ASC, key ASC" in fake.seen_jql


def test_live_ids_in_concurrent_id_ranges_cover_every_issue():
    jira = FakeJira(count=40, page=3)  # 3 a page: the listing must split
    for gone in ("10005", "10017", "10040"):
        del jira.issues[gone]
    _, connector = _connector({"jql": "project = FK"})

    async def listing():
        async with connector.client:
            return await connector.live_ids()

    with respx.mock(assert_all_called=False) as router:
        jira.mount(router)
        live = asyncio.run(listing())
    assert live == set(jira.issues)
    ranges = [jql for jql in jira.seen_jql if " AND id " in jql]
    assert any("id < " in jql for jql in ranges) and any("id >= " in jql for jql in ranges)
