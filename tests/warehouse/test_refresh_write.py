"""The results refresh writes every analysis's table in one transaction, leaves the database's
settings as they were (API readers share them) and says how long each step took; the kept
tables are the frames computed, row for row."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.results import compute
from pmolens.warehouse.store import Staged, Warehouse
from tests.factories import northwind_source, work_items

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


def test_refresh_writes_the_computed_frames_in_one_go(tmp_path):
    settings = settings_from_dict(
        {
            "sources": [northwind_source()],
            "analytics": {"forecast": {"trials": 200}},
        }
    )
    items = work_items(
        *[
            {"item_id": f"nw:{i}", "key": f"NW-{i}", "source": "nw", "organisation": "Northwind", "level": "story",
             "team": "Web", "status_category": "in_progress" if i % 2 else "done"}
            for i in range(1, 6)
        ]
    )  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.register_config(settings)
        run_id = wh.begin_run("nw", "full", None)
        wh.commit_sync(run_id, "nw", Staged(work_items=[items]), live_ids=None, cursor=None)
        wh.cursor().execute("SET threads = 3")
        times: dict[str, float] = {}
        generation = refresh(wh, settings, as_of=AS_OF, timings=times)
        assert set(times) == {"read", "compute", "write"}
        assert wh.query("SELECT current_setting('threads') AS t")["t"][0] == 3
        kept = wh.query("SELECT name, generation, as_of, rows FROM results")
        assert kept["name"].to_list() == list(ANALYSES)
        assert set(kept["generation"].to_list()) == {generation}
        assert set(kept["as_of"].to_list()) == {AS_OF}
        expected = compute(Inputs(wh.frames(), settings, AS_OF))
        assert kept["rows"].to_list() == [frame.height for frame in expected.values()]
        for name in ("portfolio", "flow_aging", "findings"):
            stored = wh.query(f"SELECT * FROM result_{name}")
            assert_frame_equal(stored, expected[name], check_dtypes=False)
        assert wh.query("SELECT count(*) AS n FROM metric_snapshots")["n"][0] > 0
        refresh(wh, settings, as_of=AS_OF)  # again: one row per analysis, replaced
        assert wh.query("SELECT count(*) AS n FROM results")["n"][0] == len(ANALYSES)
        assert isinstance(wh.query("SELECT * FROM result_portfolio"), pl.DataFrame)
