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
