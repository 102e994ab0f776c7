"""Analytics kept per sync generation, so reads are fast.

``compute`` runs registered analyses (``warehouse.analyses``) over one snapshot of the frames;
``pipeline.refresh`` materialises them after a sync as tables ``result_<name>`` with a row in
``results`` saying which generation (last successful sync run id) each belongs to.
``ResultCache`` serves them from memory until the generation moves.
"""

from __future__ import annotations

import threading

import polars as pl

from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse, utcnow


def compute(inputs: Inputs, names: list[str] | None = None) -> dict[str, pl.DataFrame]:
    return {name: ANALYSES[name](inputs) for name in (names or list(ANALYSES))}


class ResultCache:
    """In-memory copies of the materialised results, dropped when the generation moves."""

    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        self._warehouse = warehouse
        self._settings = settings
        self._lock = threading.Lock()
        self._generation = -1
        self._frames: dict[str, pl.DataFrame] = {}

    def get(self, name: str) -> pl.DataFrame:
        if name not in ANALYSES:
            raise KeyError(name)
        generation = self._warehouse.generation()
        with self._lock:
            if generation != self._generation:
                self._frames = {}
                self._generation = generation
            cached = self._frames.get(name)
        if cached is not None:
            return cached
        stored = self._warehouse.query("SELECT generation FROM results WHERE name = ?", [name])
        if stored.height and stored["generation"][0] == generation:
            frame = self._warehouse.query(f"SELECT * FROM result_{name}")
        else:  # not materialised for this generation (yet): compute from the snapshot
            inputs = Inputs(self._warehouse.frames(), self._settings, utcnow(), self._warehouse)
            frame = ANALYSES[name](inputs)
        with self._lock:
            if generation == self._generation:
                self._frames[name] = frame
        return frame
