"""The contract of an analysis: a named pure function of the canonical frames (``Inputs``)
returning one frame, registered with ``@analysis("name")``; ``@snapshot`` functions give the
headline figures kept per sync for trends.

Adding an analysis = one ``@analysis("name")`` function in a module of ``warehouse/analyses/``
(one module per domain, listed in the package ``__init__``). The transforms themselves stay pure
in ``warehouse/transforms/``; the analyses only pick their inputs and parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import polars as pl

from warehouse.config import Settings
from warehouse.store import Warehouse

Analysis = Callable[["Inputs"], pl.DataFrame]
ANALYSES: dict[str, Analysis] = {}


def analysis(name: str) -> Callable[[Analysis], Analysis]:
    def register(fn: Analysis) -> Analysis:
        ANALYSES[name] = fn
        return fn

    return register


@dataclass
class Inputs:
    """The frames of one warehouse snapshot, plus shared intermediates computed at most once."""

    frames: dict[str, pl.DataFrame]
    settings: Settings
    as_of: datetime
    warehouse: Warehouse | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def work_items(self) -> pl.DataFrame:
        return self.frames["work_items"]

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """An intermediate several analyses use (dependency edges, flow data), computed once."""
        if name not in self.extra:
            self.extra[name] = compute()
        return self.extra[name]

    def previous(self, name: str) -> pl.DataFrame | None:
        """The stored result of the previous generation (for lifecycles such as findings)."""
        if self.warehouse is None:
            return None
        known = self.warehouse.query("SELECT 1 FROM results WHERE name = ?", [name])
        return self.warehouse.query(f"SELECT * FROM result_{name}") if known.height else None

    @cached_property
    def team_organisation(self) -> pl.DataFrame:
        """(team, organisation): each team's organisation, for the per-team analyses' rows."""
        from warehouse.transforms.backlog import team_organisation

        return team_organisation(self.work_items)

    def with_team_organisation(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (per team) with the team's organisation right after ``team``."""
        rest = [c for c in frame.columns if c != "team"]
        return frame.join(self.team_organisation, on="team", how="left").select(
            "team", "organisation", *rest
        )

    @cached_property
    def portfolio(self) -> pl.DataFrame:
        from warehouse.transforms.portfolio import portfolio_tree

        return portfolio_tree(self.work_items)


Snapshot = Callable[[Inputs], list[dict[str, Any]]]
SNAPSHOTS: list[Snapshot] = []


def snapshot(fn: Snapshot) -> Snapshot:
    SNAPSHOTS.append(fn)
    return fn
