"""Small canonical frames for transform tests: give only the columns that matter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from pmolens.warehouse.model import SCHEMAS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def work_items(*rows: dict[str, Any]) -> pl.DataFrame:
    defaults = {
        "source": "s",
        "organisation": "Org",
        "level": "story",
        "status_category": "todo",
        "raw_status": "To Do",
        "raw_type": "Story",
        "created": T0,
        "updated": T0,
        "labels": [],
        "flagged": False,
        "is_deleted": False,
        "has_description": True,
    }
    full = []
    for row in rows:
        merged = {**defaults, **row}
        merged.setdefault("key", merged["item_id"])
        merged.setdefault("native_id", merged["item_id"])
        merged.setdefault("title", f"Item {merged['item_id']}")
        merged.setdefault("url", f"https://tracker.example/browse/{merged['key']}")
        full.append(merged)
    return pl.DataFrame(full, schema=SCHEMAS["work_items"])


def frame(kind: str, *rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMAS[kind])


def northwind_source(**extra: Any) -> dict[str, Any]:
    """The Jira Cloud source "nw" (organisation Northwind) of the warehouse tests' configs."""
    return {
        "name": "nw",
        "kind": "jira_cloud",
        "organisation": "Northwind",
        "base_url": "https://nw.example",
        "email": "a@nw.example",
        "jql": "project = NW",
        "token_env": "NW_TOKEN",
        **extra,
    }


def plant_cross_org_conflict(warehouse: Any) -> tuple[dict, dict]:
    """On a synced simulated chain: link the Fabrikam story with the latest planned end (in an
    epic) to the Northwind story with the earliest one, as an ordinary tracker link row — a
    cross-organisation ``conflict`` (the dependent is planned to finish before its blocker) that
    the next refresh picks up like any other link. Returns (blocker, dependent) rows."""
    planned = """
        SELECT w.item_id, w.key, w.organisation, w.parent_id, s."end" AS planned_end
        FROM work_items w JOIN sprints s ON w.sprint_id = s.sprint_id
        WHERE NOT w.is_deleted AND w.status_category = 'todo' AND w.level = 'story'
          AND w.organisation = ? AND w.parent_id IS NOT NULL
        ORDER BY s."end" {order}, w.key LIMIT 1
    """
    blocker = warehouse.query(planned.format(order="DESC"), ["Fabrikam"]).row(0, named=True)
    dependent = warehouse.query(planned.format(order="ASC"), ["Northwind"]).row(0, named=True)
    assert blocker["planned_end"] > dependent["planned_end"]
    with warehouse.transaction() as con:
        con.execute(
            "INSERT INTO links (source, link_id, from_item, to_item, kind, raw_type) "
            "VALUES ('fabrikam-jira-dc', 'planted-cross-org', ?, ?, 'blocks', 'Blocks')",
            [blocker["item_id"], dependent["item_id"]],
        )
    return blocker, dependent


def simulated_chain(
    directory: Any, *, size: int = 500, server: dict | None = None, plant: bool = False
) -> tuple[Any, tuple[dict, dict] | None]:
    """The demo chain (three organisations, three trackers; simulator seed 7) synced over real
    HTTP into ``directory``/chain.duckdb and refreshed; with ``plant``, one cross-organisation
    conflict added before the refresh. Returns the settings and the planted (blocker,
    dependent) rows. The simulator's public token is set in the environment for the sync only."""
    import asyncio
    import os

    from pmolens.pipeline.refresh import refresh
    from pmolens.pipeline.sync import sync_all
    from pmolens.simulator import DEMO_TOKEN, Simulator, demo_settings
    from pmolens.warehouse.config import settings_from_dict
    from pmolens.warehouse.store import Warehouse

    previous = os.environ.get("PMOLENS_DEMO_TOKEN")
    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    try:
        with Simulator(seed=7, size=size) as sim:
            data = demo_settings(sim.url)
            data["warehouse"] = {"path": str(directory / "chain.duckdb")}
            if server is not None:
                data["server"] = server
            settings = settings_from_dict(data, base_dir=directory)
            with Warehouse(settings.warehouse_path) as warehouse:
                outcomes = asyncio.run(sync_all(warehouse, settings, full=True))
                assert all(o.ok for o in outcomes), outcomes
                planted = plant_cross_org_conflict(warehouse) if plant else None
                refresh(warehouse, settings)
    finally:
        if previous is None:
            os.environ.pop("PMOLENS_DEMO_TOKEN", None)
        else:
            os.environ["PMOLENS_DEMO_TOKEN"] = previous
    return settings, planted
