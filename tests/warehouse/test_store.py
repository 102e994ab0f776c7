from __future__ import annotations

import pytest

from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.schema import SCHEMA_VERSION
from pmolens.warehouse.store import Staged, Warehouse
from tests.factories import frame, work_items

JIRA = "https://northwind.atlassian.net"
ADO = "https://dev.azure.com/contoso"


def chain(patterns=()):
    return settings_from_dict(
        {
            "sources": [
                {
                    "name": "nw",
                    "kind": "jira_cloud",
                    "organisation": "Northwind",
                    "base_url": JIRA,
                    "email": "a@b.example",
                    "jql": "project = NW",
                    "token_env": "X",
                },
                {
                    "name": "co",
                    "kind": "azure_devops",
                    "organisation": "Contoso",
                    "base_url": ADO,
                    "project": "Delivery",
                    "token_env": "Y",
                },
            ],
            "cross_links": list(patterns),
        }
    )


def load(wh: Warehouse, source: str, items, links=(), settings=None) -> None:
    run_id = wh.begin_run(source, "full", None)
    staged = Staged(work_items=[items], links=[frame("links", *links)] if links else [])
    wh.commit_sync(
        run_id,
        source,
        staged,
        live_ids=None,
        cursor=None,
        cross_links=(settings or chain()).cross_links,
    )


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "s.duckdb") as warehouse:
        warehouse.register_config(chain())
        yield warehouse


def nw_items():
    return work_items(
        {
            "item_id": "nw:1",
            "source": "nw",
            "native_id": "1",
            "key": "NW-1",
            "organisation": "Northwind",
            "url": f"{JIRA}/browse/NW-1",
            "title": "Needs ADO#77 first",
        },
        {
            "item_id": "nw:2",
            "source": "nw",
            "native_id": "2",
            "key": "NW-2",
            "organisation": "Northwind",
            "url": f"{JIRA}/browse/NW-2",
        },
    )


def co_items():
    return work_items(
        {
            "item_id": "co:77",
            "source": "co",
            "native_id": "77",
            "key": "77",
            "organisation": "Contoso",
            "url": f"{ADO}/Delivery/_workitems/edit/77",
        },
        {
            "item_id": "co:78",
            "source": "co",
            "native_id": "78",
            "key": "78",
            "organisation": "Contoso",
            "url": f"{ADO}/Delivery/_workitems/edit/78",
        },
    )


def test_migrations_are_versioned_and_idempotent(tmp_path):
    path = tmp_path / "m.duckdb"
    with Warehouse(path) as first:
        assert first.schema_version == SCHEMA_VERSION
    with Warehouse(path) as second:
        versions = second.query("SELECT version FROM schema_version ORDER BY version")[
            "version"
        ].to_list()
        assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_cross_tracker_links_resolve_in_both_directions(wh):
    # Jira remote link: NW-1 "is blocked by" ADO 77 (the far end is the blocker)
    jira_remote = {
        "source": "nw",
        "link_id": "remote:1",
        "from_item": None,
        "to_item": "nw:1",
        "target_url": f"{ADO}/Delivery/_workitems/edit/77",
        "kind": "blocks",
        "raw_type": "remote: is blocked by",
    }
    # ADO hyperlink: 78 "blocks" NW-2 (the far end is the dependent)
    ado_hyperlink = {
        "source": "co",
        "link_id": "hyper:78",
        "from_item": "co:78",
        "to_item": None,
        "target_url": f"{JIRA}/browse/NW-2",
        "kind": "blocks",
        "raw_type": "Hyperlink",
    }
    load(wh, "nw", nw_items(), [jira_remote])
    # the ADO side is not synced yet: the link is kept, visible and unresolved
    assert wh.query("SELECT from_item, resolved FROM links").rows() == [(None, False)]
    load(wh, "co", co_items(), [ado_hyperlink])
    rows = wh.query(
        "SELECT link_id, from_item, to_item, resolved FROM links ORDER BY link_id"
    ).rows()
    assert rows == [("hyper:78", "co:78", "nw:2", True), ("remote:1", "co:77", "nw:1", True)]


def test_text_references_become_links(wh):
    settings = chain([{"pattern": r"ADO#(\d+)", "source": "co"}])
    wh.register_config(settings)
    load(wh, "co", co_items(), settings=settings)
    load(wh, "nw", nw_items(), settings=settings)
    rows = wh.query("SELECT from_item, to_item, kind, resolved FROM links").rows()
    assert rows == [("co:77", "nw:1", "blocks", True)]


def test_reconciliation_marks_deleted_and_unresolves_their_links(wh):
    link = {
        "source": "nw",
        "link_id": "9",
        "from_item": "nw:1",
        "to_item": "nw:2",
        "kind": "blocks",
        "raw_type": "Blocks",
    }
    load(wh, "nw", nw_items(), [link])
    run_id = wh.begin_run("nw", "incremental", None)
    result = wh.commit_sync(run_id, "nw", Staged(), live_ids={"1"}, cursor=None)
    assert result.deleted == 1
    assert wh.query("SELECT item_id FROM work_items WHERE is_deleted").rows() == [("nw:2",)]
    assert wh.query("SELECT resolved FROM links").rows() == [(False,)]
    assert wh.frames()["work_items"].height == 1


def test_epic_link_keys_resolve_to_parent_ids(wh):
    items = work_items(
        {"item_id": "nw:10", "source": "nw", "key": "NW-10", "level": "epic"},
        {"item_id": "nw:11", "source": "nw", "key": "NW-11", "parent_key": "NW-10"},
        {"item_id": "nw:12", "source": "nw", "key": "NW-12", "parent_key": "NW-404"},
    )
    load(wh, "nw", items)
    parents = dict(wh.query("SELECT item_id, parent_id FROM work_items ORDER BY item_id").rows())
    assert parents == {"nw:10": None, "nw:11": "nw:10", "nw:12": None}


def test_frames_come_back_with_the_canonical_schema(wh):
    load(wh, "nw", nw_items())
    frames = wh.frames()
    from pmolens.warehouse.model import SCHEMAS

    for name in ("work_items", "links", "sprints", "status_changes"):
        assert dict(frames[name].schema) == SCHEMAS[name], name


def test_generation_moves_with_each_committed_sync_not_with_failed_ones(wh):
    assert wh.generation() == 0
    load(wh, "nw", nw_items())
    first = wh.generation()
    assert first > 0
    failed = wh.begin_run("co", "full", None)
    wh.fail_run(failed, "boom")
    assert wh.generation() == first
    load(wh, "nw", nw_items())
    assert wh.generation() > first


def test_generation_is_read_again_after_the_ttl(wh, monkeypatch):
    """A commit through another connection to the same file shows after GENERATION_TTL."""
    import pmolens.warehouse.store as store

    clock = [1000.0]
    monkeypatch.setattr(store.time, "monotonic", lambda: clock[0])
    assert wh.generation() == 0
    with wh.cursor() as other:  # not through wh.transaction(): wh cannot know
        other.execute(
            "INSERT INTO sync_runs (run_id, source, mode, started, outcome) "
            "VALUES (41, 'nw', 'full', now(), 'success')"
        )
    assert wh.generation() == 0  # still trusted
    clock[0] += store.GENERATION_TTL
    assert wh.generation() == 41
