"""Analytics kept per sync generation, so reads are fast.

``compute`` runs registered analyses (``warehouse.analyses``) over one snapshot of the frames;
``pipeline.refresh`` materialises them after a sync as tables ``result_<name>`` with a row in
``results`` saying which generation (last successful sync run id) each belongs to.
``ResultCache`` serves them from memory until the generation moves, and answers "as of" another
moment by computing over the frames as known then (``Inputs.known_at``), in a small LRU. On the
lake "as known then" is the lake's snapshot at that moment (time travel), and a moment a past
refresh kept results for is answered with those very results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

import polars as pl

from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse, utcnow


def compute(inputs: Inputs, names: list[str] | None = None) -> dict[str, pl.DataFrame]:
    return {name: ANALYSES[name](inputs) for name in (names or list(ANALYSES))}


AS_OF_RESULTS = 64
"""Most results kept for moments other than the kept generation's as-of (LRU)."""
AS_OF_INPUTS = 2
"""Most as-of snapshots (frames plus their intermediates) kept at once (LRU): the routes asked
about one past moment share one snapshot, and memory stays bounded."""


def kept_as_of(warehouse: Warehouse, generation: int) -> tuple[datetime | None, frozenset[str]]:
    """The as-of moment of the results kept for ``generation`` and their names (None, empty
    when none are kept for it)."""
    kept = warehouse.query("SELECT name, as_of FROM results WHERE generation = ?", [generation])
    last = kept["as_of"].max() if kept.height else None
    if not isinstance(last, datetime):
        return None, frozenset()
    return last, frozenset(kept["name"].to_list()) & frozenset(ANALYSES)


def same_moment(as_of: datetime, kept: datetime | None) -> bool:
    """Whether ``as_of`` names the kept results' moment: the same second (reports and answers
    show it to the second, so a figure read there can be asked for again)."""
    return kept is not None and as_of.replace(microsecond=0) == kept.replace(microsecond=0)


KEPT_SEARCH = 8
"""Snapshots after a moment searched for the refresh that kept results for it."""


def past_warehouse(warehouse: Warehouse, moment: datetime) -> Warehouse | None:
    """The lake as it was at ``moment`` — or, when a refresh kept results computed at exactly
    that moment, the snapshot in which it committed them (a refresh computes at its moment and
    commits a little later, so the snapshot *at* the moment does not hold them yet). None on the
    DuckDB file or when nothing that old is kept."""
    if warehouse.lake is None:
        return None
    later = warehouse.query(
        "SELECT snapshot_id FROM ducklake_snapshots('lake') WHERE snapshot_time >= ? "
        f"ORDER BY snapshot_id LIMIT {KEPT_SEARCH}",
        [moment],
    )
    for snapshot in later["snapshot_id"].to_list():
        candidate = warehouse.at_snapshot(int(snapshot))
        if candidate is None:
            continue
        kept, _ = kept_as_of(candidate, candidate.generation())
        if kept is not None and same_moment(moment, kept):
            return candidate
    return warehouse.at(moment)


class ResultCache:
    """In-memory copies of the materialised results, dropped when the generation moves; results
    as of another moment are computed once and kept in a bounded LRU keyed by
    (generation, as_of, name)."""

    def __init__(
        self, warehouse: Warehouse, settings: Settings, as_of_results: int = AS_OF_RESULTS
    ) -> None:
        self._warehouse = warehouse
        self._settings = settings
        self._lock = threading.Lock()
        self._generation = -1
        self._frames: dict[str, pl.DataFrame] = {}
        self._kept_as_of: tuple[int, datetime | None] = (-1, None)
        self._as_of_results = as_of_results
        self._past: OrderedDict[tuple[int, datetime, str], pl.DataFrame] = OrderedDict()
        self._inputs: OrderedDict[tuple[int, datetime], Inputs] = OrderedDict()

    def kept_as_of(self) -> datetime | None:
        """The as-of moment of the results kept for the current generation (None: none kept)."""
        generation = self._warehouse.generation()
        with self._lock:
            known_generation, moment = self._kept_as_of
        if known_generation != generation:
            moment = kept_as_of(self._warehouse, generation)[0]
            if moment is not None:  # none kept yet: ask again once the refresh has kept them
                with self._lock:
                    self._kept_as_of = (generation, moment)
        return moment

    def get(self, name: str, as_of: datetime | None = None) -> pl.DataFrame:
        """Analysis ``name`` as kept for the current generation, or as of ``as_of`` when that is
        another moment than the kept one (computed over the frames known then)."""
        if name not in ANALYSES:
            raise KeyError(name)
        if as_of is not None and not same_moment(as_of, self.kept_as_of()):
            return self._as_of(name, as_of)
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

    def inputs(self, as_of: datetime | None = None) -> Inputs:
        """The inputs behind ``get(name, as_of)``: the current frames at the kept results' moment
        (as the refresh saw them), or the frames as known at another ``as_of``. Kept in the same
        bounded LRU as the as-of snapshots, so a route that computes on top of the analyses
        (the forecast what-if) reads the warehouse once per generation and moment, not per
        request. Before any results are kept: a fresh snapshot as of now, not kept."""
        kept = self.kept_as_of()
        if as_of is not None and not same_moment(as_of, kept):
            return self._snapshot(self._warehouse.generation(), as_of, past=True)
        if kept is None:
            return Inputs(self._warehouse.frames(), self._settings, utcnow(), self._warehouse)
        return self._snapshot(self._warehouse.generation(), kept, past=False)

    def _snapshot(self, generation: int, as_of: datetime, past: bool) -> Inputs:
        """The LRU's inputs for (generation, as_of), built when missing: as known at ``as_of``
        (``past``) or the frames as they are (the kept moment, never a ``past`` key: ``get``
        reads kept results for that moment)."""
        key = (generation, as_of)
        with self._lock:
            for moment in [k for k in self._inputs if k[0] != generation]:
                del self._inputs[moment]
            inputs = self._inputs.get(key)
            if inputs is not None:
                self._inputs.move_to_end(key)
                return inputs
        # outside the lock: two first requests may both build, both correct
        then = self._warehouse.at(as_of) if past else None  # the lake as it was (time travel)
        frames = (then or self._warehouse).frames()
        if past:
            inputs = Inputs.known_at(frames, self._settings, as_of, then or self._warehouse)
        else:
            inputs = Inputs(frames, self._settings, as_of, self._warehouse)
        with self._lock:
            inputs = self._inputs.setdefault(key, inputs)
            self._inputs.move_to_end(key)
            while len(self._inputs) > AS_OF_INPUTS:
                self._inputs.popitem(last=False)
        return inputs

    def _as_of(self, name: str, as_of: datetime) -> pl.DataFrame:
        generation = self._warehouse.generation()
        key = (generation, as_of, name)
        with self._lock:
            for old in [k for k in self._past if k[0] != generation]:
                del self._past[old]
            for moment in [k for k in self._inputs if k[0] != generation]:
                del self._inputs[moment]
            cached = self._past.get(key)
            if cached is not None:
                self._past.move_to_end(key)
                return cached
        then = past_warehouse(self._warehouse, as_of)
        kept, names = kept_as_of(then, then.generation()) if then else (None, frozenset())
        if then is not None and name in names and same_moment(as_of, kept):
            frame = then.query(f"SELECT * FROM result_{name}")  # exactly what was served then
        else:
            frame = ANALYSES[name](self._snapshot(generation, as_of, past=True))
        with self._lock:
            self._past[key] = frame
            self._past.move_to_end(key)
            while len(self._past) > self._as_of_results:
                self._past.popitem(last=False)
        return frame
