from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.api.runtime import make_runtime
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Staged, Warehouse
from tests.factories import frame, northwind_source, work_items

VIEWER, OPERATOR = "viewer-token-123", "operator-token-456"


def chain_settings(tmp_path, auth: str = "token"):
    return settings_from_dict(
        {
            "warehouse": {"path": str(tmp_path / "api.duckdb")},
            "server": {
                "auth": auth,
                "tokens": [
                    {"role": "viewer", "env": "TEST_VIEWER_TOKEN"},
                    {"role": "operator", "env": "TEST_OPERATOR_TOKEN"},
                ],
            },
            "organisations": [{"name": "Northwind"}, {"name": "Contoso"}],
            "sources": [
                northwind_source(schedule="*/15 * * * *"),
                {
                    "name": "co",
                    "kind": "jira_dc",
                    "organisation": "Contoso",
                    "base_url": "https://co.example",
                    "token_env": "CO_TOKEN",
                },
            ],
        }
    )


def seed(warehouse: Warehouse, settings) -> None:
    warehouse.register_config(settings)
    nw = work_items(
        {
            "item_id": "nw:1",
            "source": "nw",
            "key": "NW-1",
            "level": "epic",
            "team": "Web",
            "organisation": "Northwind",
            "title": "<script>alert(1)</script> epic",
        },
        {
            "item_id": "nw:2",
            "source": "nw",
            "key": "NW-2",
            "parent_id": "nw:1",
            "team": "Web",
            "organisation": "Northwind",
            "estimate": 3.0,
            "status_category": "done",
        },
        {
            "item_id": "nw:3",
            "source": "nw",
            "key": "NW-3",
            "parent_id": "nw:1",
            "team": "App",
            "organisation": "Northwind",
            "estimate": 5.0,
        },
    )
    co = work_items(
        {
            "item_id": "co:1",
            "source": "co",
            "key": "CO-1",
            "level": "epic",
            "team": "Pay",
            "organisation": "Contoso",
            "title": '<img src=x onerror="window.__pwned=1">',
        },
        {
            "item_id": "co:2",
            "source": "co",
            "key": "CO-2",
            "parent_id": "co:1",
            "team": "Pay",
            "organisation": "Contoso",
        },
    )
    links = frame(
        "links",
        {
            "source": "nw",
            "link_id": "L1",
            "from_item": "co:2",
            "to_item": "nw:3",
            "kind": "blocks",
            "raw_type": "Blocks",
        },
    )
    for source, items, link_rows in (("nw", nw, [links]), ("co", co, [])):
        run_id = warehouse.begin_run(source, "full", None)
        warehouse.commit_sync(
            run_id, source, Staged(work_items=[items], links=link_rows), live_ids=None, cursor=None
        )
    refresh(warehouse, settings)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    return chain_settings(tmp_path)


@pytest.fixture
def runtime(settings):
    rt = make_runtime(settings)
    seed(rt.warehouse, settings)
    yield rt
    rt.warehouse.close()


@pytest.fixture
def client(runtime):
    with TestClient(create_app(runtime)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
