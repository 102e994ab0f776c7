"""The contract of an analysis: a named pure function of the canonical frames (``Inputs``)
returning one frame, registered with ``@analysis("name")``; ``@snapshot`` functions give the
headline figures kept per sync for trends.

Adding an analysis = one ``@analysis("name")`` function in a module of ``warehouse/analyses/``
(one module per domain, listed in the package ``__init__``). The transforms themselves stay pure
in ``warehouse/transforms/``; the analyses only pick their inputs and parameters.

Intermediates are computed at most once per ``Inputs`` and reached by name, never by a string
key (two keys that happened to clash would silently hand one analysis another's frame): the ones
several domains read are properties of ``Inputs`` (``inputs.dependency_edges``,
``inputs.flow_data``); the ones a single domain's analyses share are functions of that domain's
module marked ``@once``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, wraps
from typing import Any, TypeVar, cast

import polars as pl

from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse
from pmolens.warehouse.transforms.dependencies import dependency_edges
from pmolens.warehouse.transforms.flow import FlowData, prepare

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
    #: results of the ``@once`` functions, keyed by the function itself
    _once: dict[Callable[..., Any], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def work_items(self) -> pl.DataFrame:
        return self.frames["work_items"]

    @cached_property
    def dependency_edges(self) -> pl.DataFrame:
        """Every ``blocks`` link as blocker -> dependent (dependencies, alignment, impediments,
        backlog and forecast all read it)."""
        return dependency_edges(self.frames, self.as_of)

    @cached_property
    def flow_data(self) -> FlowData:
        """Items joined to their status history (flow, backlog, forecast and KPIs read it)."""
        return prepare(
            self.work_items,
            self.frames["status_changes"],
            self.as_of,
            self.settings.analytics.flow.work_levels,
        )

    def previous(self, name: str) -> pl.DataFrame | None:
        """The stored result of the previous generation (for lifecycles such as findings)."""
        if self.warehouse is None:
            return None
        known = self.warehouse.query("SELECT 1 FROM results WHERE name = ?", [name])
        return self.warehouse.query(f"SELECT * FROM result_{name}") if known.height else None

    @cached_property
    def team_organisation(self) -> pl.DataFrame:
        """(team, organisation): each team's organisation, for the per-team analyses' rows."""
        from pmolens.warehouse.transforms.backlog import team_organisation

        return team_organisation(self.work_items)

    def with_team_organisation(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (per team) with the team's organisation right after ``team``."""
        rest = [c for c in frame.columns if c != "team"]
        return frame.join(self.team_organisation, on="team", how="left").select(
            "team", "organisation", *rest
        )

    @cached_property
    def portfolio(self) -> pl.DataFrame:
        from pmolens.warehouse.transforms.portfolio import portfolio_tree

        return portfolio_tree(self.work_items)


T = TypeVar("T")


def once(compute: Callable[[Inputs], T]) -> Callable[[Inputs], T]:
    """``compute(inputs)`` at most once per ``Inputs``: an intermediate several analyses of one
    domain read. Kept under the function itself, so no two intermediates can share a slot."""

    @wraps(compute)
    def get(inputs: Inputs) -> T:
        if compute not in inputs._once:
            inputs._once[compute] = compute(inputs)
        return cast(T, inputs._once[compute])

    return get


Snapshot = Callable[[Inputs], list[dict[str, Any]]]
SNAPSHOTS: list[Snapshot] = []


def snapshot(fn: Snapshot) -> Snapshot:
    SNAPSHOTS.append(fn)
    return fn
