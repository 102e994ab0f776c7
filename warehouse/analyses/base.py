"""The contract of an analysis: a named pure function of the canonical frames (``Inputs``)
returning one frame, registered with ``@analysis("name")``; ``@snapshot`` functions give the
headline figures kept per sync for trends.

Adding an analysis = one ``@analysis("name")`` function in a module of ``warehouse/analyses/``
(one module per domain, listed in the package ``__init__``). The transforms themselves stay pure
in ``warehouse/transforms/``; the analyses only pick their inputs and parameters.

``Inputs.known_at`` is the one way to see the warehouse "as of" a moment (``known_at``): the
kept results, the steering report's ``--as-of`` and the API's ``as_of`` all use it.

Intermediates are computed at most once per ``Inputs`` and reached by name, never by a string
key (two keys that happened to clash would silently hand one analysis another's frame): the ones
several domains read are properties of ``Inputs`` (``inputs.dependency_edges``,
``inputs.flow_data``); the ones a single domain's analyses share are functions of that domain's
module marked ``@once``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, wraps
from typing import Any, TypeVar, cast

import polars as pl

from pmolens.warehouse.config import Settings
from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.store import Warehouse
from pmolens.warehouse.transforms.calendar import Calendar
from pmolens.warehouse.transforms.dependencies import dependency_edges
from pmolens.warehouse.transforms.dependencies.blocked import flag_on
from pmolens.warehouse.transforms.flow import FlowData, prepare

Analysis = Callable[["Inputs"], pl.DataFrame]
ANALYSES: dict[str, Analysis] = {}


def analysis(name: str) -> Callable[[Analysis], Analysis]:
    def register(fn: Analysis) -> Analysis:
        ANALYSES[name] = fn
        return fn

    return register


def _state_at(changes: pl.DataFrame, moment: pl.Expr, columns: dict[str, str]) -> pl.DataFrame:
    """Per item that changed after ``moment``: each ``columns`` value (output -> change column
    stem) as it stood then: the ``to_`` side of the last change at or before ``moment``, else
    the ``from_`` side of the first change after it."""
    after = pl.col("at") > moment
    return (
        changes.group_by("item_id")
        .agg(
            after.any().alias("_later"),
            *[
                pl.coalesce(
                    pl.col(f"to_{stem}").filter(~after).sort_by(pl.col("at").filter(~after)).last(),
                    pl.col(f"from_{stem}")
                    .filter(after)
                    .sort_by(pl.col("at").filter(after))
                    .first(),
                ).alias(out)
                for out, stem in columns.items()
            ],
        )
        .filter(pl.col("_later"))
        .drop("_later")
    )


def known_at(frames: dict[str, pl.DataFrame], as_of: datetime) -> dict[str, pl.DataFrame]:
    """The canonical frames as the warehouse knew them at ``as_of`` (definition: README "As of").

    - work items created after ``as_of`` are left out, with the links to and from them;
    - status, status category and the flag are rebuilt from ``status_changes``: an item that
      changed after ``as_of`` gets the value of its last change up to ``as_of`` (before its
      first change: that change's old value); ``resolved`` and ``updated`` after ``as_of`` are
      cleared / set back to the item's last known change (else its creation);
    - status changes after ``as_of`` are dropped;
    - sprints are as of ``as_of``: not started yet is ``future``, completed after it is still
      ``active`` (completion cleared), completed up to it is ``closed``.

    Fields the trackers keep no history of (team, parent, estimate, sprint, rank, labels, links
    between items that both existed) keep their current value. At or after the newest timestamp
    in the frames this changes nothing, so the kept results (computed on the synced frames) are
    the same as the frames known at their ``as_of``.
    """
    moment = pl.lit(as_of.astimezone(UTC), dtype=UTC_TS)
    items = frames["work_items"].filter(pl.col("created").is_null() | (pl.col("created") <= moment))
    gone = frames["work_items"].join(items.select("item_id"), on="item_id", how="anti")["item_id"]
    changes = frames["status_changes"].filter(pl.col("at").is_null() | (pl.col("at") <= moment))
    history = frames["status_changes"].filter(pl.col("at").is_not_null())
    is_flag = pl.col("field") == "flagged"
    status = _state_at(
        history.filter(~is_flag.fill_null(False)),
        moment,
        {"_raw_status": "status", "_status_category": "category"},
    )
    flag = _state_at(history.filter(is_flag.fill_null(False)), moment, {"_flag": "status"})
    last_seen = changes.group_by("item_id").agg(pl.col("at").max().alias("_last_change"))
    schema = items.schema
    items = (
        items.join(status, on="item_id", how="left")
        .join(flag, on="item_id", how="left")
        .join(last_seen, on="item_id", how="left")
        .with_columns(
            pl.coalesce("_raw_status", "raw_status").alias("raw_status"),
            pl.coalesce("_status_category", "status_category").alias("status_category"),
            pl.when(
                pl.col("_flag").is_not_null() | pl.col("item_id").is_in(flag["item_id"].implode())
            )
            .then(flag_on("_flag"))
            .otherwise(pl.col("flagged"))
            .alias("flagged"),
            pl.when(pl.col("resolved") > moment)
            .then(None)
            .otherwise(pl.col("resolved"))
            .alias("resolved"),
            pl.when(pl.col("updated") > moment)
            .then(pl.max_horizontal("created", "_last_change"))
            .otherwise(pl.col("updated"))
            .alias("updated"),
        )
        .select(list(schema))
        .cast(schema)
    )
    links = frames["links"].filter(
        ~pl.col("from_item").is_in(gone.implode()).fill_null(False)
        & ~pl.col("to_item").is_in(gone.implode()).fill_null(False)
    )
    sprints = frames["sprints"].with_columns(
        pl.when(pl.col("start") > moment)
        .then(pl.lit("future"))
        .when(pl.col("complete") <= moment)
        .then(pl.lit("closed"))
        .when(pl.col("complete") > moment)
        .then(pl.lit("active"))
        .when((pl.col("state") == "closed") & (pl.col("end") > moment))
        .then(pl.lit("active"))
        .otherwise(pl.col("state"))
        .alias("state"),
        pl.when(pl.col("complete") > moment)
        .then(None)
        .otherwise(pl.col("complete"))
        .alias("complete"),
    )
    return {
        **frames,
        "work_items": items,
        "links": links,
        "sprints": sprints,
        "status_changes": changes,
    }


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

    @classmethod
    def known_at(
        cls,
        frames: dict[str, pl.DataFrame],
        settings: Settings,
        as_of: datetime,
        warehouse: Warehouse | None = None,
    ) -> Inputs:
        """The analyses' inputs as of ``as_of``: the frames as known then (``known_at``)."""
        return cls(known_at(frames, as_of), settings, as_of, warehouse)

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
            calendar=self.calendar,
        )

    @cached_property
    def calendar(self) -> Calendar:
        """Each organisation's time zone and working days (``[[organisations]]``), which cut
        days and weeks in the flow metrics; organisations not configured use UTC."""
        return Calendar(
            zones={o.name: o.time_zone for o in self.settings.organisations},
            working_days={o.name: tuple(o.working_days) for o in self.settings.organisations},
        )

    def previous(self, name: str) -> pl.DataFrame | None:
        """The stored result of the previous generation (for lifecycles such as findings);
        None when it is as of a later moment than these inputs (an as-of moment in the past
        must not see what was found after it)."""
        if self.warehouse is None:
            return None
        known = self.warehouse.query("SELECT as_of FROM results WHERE name = ?", [name])
        if not known.height or known["as_of"][0] > self.as_of:
            return None
        return self.warehouse.query(f"SELECT * FROM result_{name}")

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
