"""Agile PMO alignment rules: a catalogue of checks over the warehouse frames, one engine, scores.

A *rule* is a pure function over the canonical frames (plus the dependency edges) that returns the
offending rows as *findings* with fixed columns (``FINDINGS_SCHEMA``); no rows means the rule
passes. Every rule has an id, a title, a rationale (the practice it protects), a default severity,
the role that should act, and thresholds. ``[rules.<id>]`` in pmolens.toml switches a rule off or
tunes its thresholds, globally or per organisation (``[rules.<id>.organisations.<org>]``); a
per-organisation setting applies to findings of that organisation. Organisations may add their own
rules as SQL over the canonical tables (``custom_rules``), checked at load time.

``update_findings`` keeps the findings table across syncs (first seen / last seen / resolved),
``alignment_scores`` turns findings into a 0-100 score per team or organisation.
Definitions of every rule: docs/alignment.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl

from warehouse.model import SCHEMAS, UTC_TS
from warehouse.settings_analytics import (
    FINDINGS_COLUMNS,
    OWNER_ROLES,
    SEVERITIES,
    CustomRule,
    RuleSettings,
    RulesSettings,
    clean_sql,
    custom_connection,
)
from warehouse.transforms.dependencies import EDGES_SCHEMA
from warehouse.transforms.hierarchy import parent_rows

# --------------------------------------------------------------------------- contract

SEVERITY_WEIGHTS: dict[str, float] = {"info": 0.25, "warning": 0.5, "critical": 1.0}

FINDINGS_SCHEMA: dict[str, Any] = {
    "rule": pl.String,
    "severity": pl.String,
    "item_id": pl.String,
    "key": pl.String,
    "url": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "owner_role": pl.String,
    "message": pl.String,
    "since": UTC_TS,
}
assert tuple(FINDINGS_SCHEMA) == FINDINGS_COLUMNS  # the settings check custom SQL against these
MAX_DEPTH = 6  # parent walk depth (the contract's limit; deeper trees are cut)
DAY_US = 86_400_000_000
_ITEM = ("item_id", "key", "url", "team", "organisation")
_EPOCH_MONDAY = date(2000, 1, 3)
_CHANGE_STATES = ("from_status", "to_status", "to_category")  # the ones rules read

RuleFn = Callable[["RuleContext", Mapping[str, Any]], pl.DataFrame]


@dataclass(frozen=True)
class Rule:
    """One check. ``fn(ctx, thresholds)`` returns findings rows (engine fills rule/defaults).
    ``defaults``: the thresholds of ``[rules.<id>]`` (warehouse/settings_analytics.py)."""

    id: str
    title: str
    rationale: str
    severity: str
    owner_role: str
    defaults: Mapping[str, Any]
    fn: RuleFn


RULES: dict[str, Rule] = {}


def _rule(
    id: str, title: str, rationale: str, severity: str, owner_role: str
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule; its thresholds and their defaults are the fields of its settings model
    (``RulesSettings.<id>``), so they are typed and checked when the config loads."""
    assert severity in SEVERITIES and owner_role in OWNER_ROLES
    defaults = RulesSettings().rule(id).thresholds()

    def register(fn: RuleFn) -> RuleFn:
        RULES[id] = Rule(id, title, rationale, severity, owner_role, defaults, fn)
        return fn

    return register


# --------------------------------------------------------------------------- shared context


def utc(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC)


def _days(start: pl.Expr | str, end: pl.Expr | str) -> pl.Expr:
    """Fractional days from start to end (both datetimes)."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return (e - s).dt.total_microseconds() / DAY_US


def _lit_ts(value: datetime) -> pl.Expr:
    return pl.lit(value, dtype=UTC_TS)


class RuleContext:
    """The frames of one evaluation plus intermediates that several rules share (computed once)."""

    def __init__(
        self, frames: Mapping[str, pl.DataFrame], edges: pl.DataFrame | None, as_of: datetime
    ) -> None:
        self.frames = frames
        self.as_of = utc(as_of)
        self.edges = edges if edges is not None else pl.DataFrame(schema=EDGES_SCHEMA)

    def frame(self, name: str) -> pl.DataFrame:
        got = self.frames.get(name)
        return got if got is not None else pl.DataFrame(schema=SCHEMAS[name])

    @cached_property
    def items(self) -> pl.DataFrame:
        """Live work items plus ``_open`` (not done) and ``_type`` (a readable type name)."""
        items = self.frame("work_items")
        if "is_deleted" in items.columns:
            items = items.filter(~pl.col("is_deleted").fill_null(False))
        return items.with_columns(
            (pl.col("status_category") != "done").fill_null(True).alias("_open"),
            pl.coalesce("raw_type", pl.col("level").str.to_titlecase(), pl.lit("Item")).alias(
                "_type"
            ),
        )

    @cached_property
    def ancestors(self) -> pl.DataFrame:
        """(item_id, anc_id, anc_level, distance>=1): every ancestor found by walking parent_id.

        One numpy gather per level over parent row numbers (at most MAX_DEPTH), never a loop per
        row; a parent that is not a live item ends the walk, a cycle ends at the depth limit.
        """
        items = self.items
        ids = items["item_id"]
        parent = parent_rows(items)  # -1: no parent, or the parent is not a live item
        rows = np.arange(items.height, dtype=np.int64)
        anc = parent
        found = []
        for distance in range(1, MAX_DEPTH + 1):
            keep = anc >= 0
            rows, anc = rows[keep], anc[keep]
            if rows.size == 0:
                break
            found.append((rows, anc, distance))
            anc = parent[anc]
        schema = {
            "item_id": pl.String,
            "anc_id": pl.String,
            "anc_level": pl.String,
            "distance": pl.Int32,
        }
        if not found:
            return pl.DataFrame(schema=schema)
        level = items["level"]
        return pl.concat(
            [
                pl.DataFrame(
                    {
                        "item_id": ids.gather(r),
                        "anc_id": ids.gather(a),
                        "anc_level": level.gather(a),
                        "distance": pl.Series(np.full(len(r), d, dtype=np.int32)),
                    },
                    schema=schema,
                )
                for r, a, d in found
            ]
        )

    @cached_property
    def epic_of(self) -> pl.DataFrame:
        """(item_id, epic_id): the nearest epic above each item (the item itself excluded)."""
        return (
            self.ancestors.filter(pl.col("anc_level") == "epic")
            .unique("item_id", keep="first", maintain_order=True)  # nearest: distance order
            .select("item_id", pl.col("anc_id").alias("epic_id"))
        )

    @cached_property
    def sprints(self) -> pl.DataFrame:
        """Team sprints (one row per sprint and team it serves) with ``_state`` (tracker state,
        else derived from dates) and ``organisation`` (the team's)."""
        as_of = _lit_ts(self.as_of)
        derived = (
            pl.when(pl.col("start").is_null() | pl.col("end").is_null())
            .then(pl.lit(None, pl.String))
            .when(pl.col("start") > as_of)
            .then(pl.lit("future"))
            .when(pl.col("end") > as_of)
            .then(pl.lit("active"))
            .otherwise(pl.lit("closed"))
        )
        sprints = self.frame("sprints").with_columns(
            pl.coalesce(pl.col("state").str.to_lowercase(), derived).alias("_state")
        )
        teams = self.frame("teams").select("team", "source", pl.col("organisation").alias("_t_org"))
        return (
            sprints.join(teams.unique(["team", "source"]), on=["team", "source"], how="left")
            .join(self.source_org, on="source", how="left")
            .with_columns(pl.coalesce("_t_org", "_s_org").alias("organisation"))
            .drop("_t_org", "_s_org")
        )

    @cached_property
    def source_org(self) -> pl.DataFrame:
        """(source, _s_org): the organisation of each source (sources, else teams, else items)."""
        parts = [
            self.frame(name).select("source", pl.col("organisation").alias("_s_org"))
            for name in ("sources", "teams")
        ]
        parts.append(self.items.select("source", pl.col("organisation").alias("_s_org")))
        return (
            pl.concat(parts)
            .filter(pl.col("source").is_not_null() & pl.col("_s_org").is_not_null())
            .unique("source", keep="first", maintain_order=True)
        )

    @cached_property
    def status_changes(self) -> pl.DataFrame:
        """Status changes (field "status") up to as_of, of live items: the columns the rules
        read (5M rows at scale: every column kept costs memory), plus ``_row``, the item's row
        in ``items``, so later steps group and look up by integer instead of by id string."""
        return (  # lazy: one pass, no filtered copy before the join (less peak memory)
            self.frame("status_changes")
            .lazy()
            .select("item_id", "change_id", "at", "field", *_CHANGE_STATES)
            .filter(
                (pl.col("field").fill_null("status") == "status")
                & pl.col("at").is_not_null()
                & (pl.col("at") <= _lit_ts(self.as_of))
            )
            .drop("field")
            .join(
                self.items.lazy().select("item_id").with_row_index("_row"),
                on="item_id",
                how="inner",
                maintain_order="left",
            )
            .collect()
        )

    @cached_property
    def last_change(self) -> pl.DataFrame:
        """(item_id, last_change_at): the latest status change of each item."""
        latest = self.status_changes.group_by("_row").agg(
            pl.col("at").max().alias("last_change_at")
        )
        return latest.select(self.items["item_id"].gather(latest["_row"]), "last_change_at")


# --------------------------------------------------------------------------- text helpers


def _short(col: str = "title", n: int = 60) -> pl.Expr:
    text = pl.col(col).fill_null("").str.strip_chars()
    return pl.when(text.str.len_chars() > n).then(text.str.slice(0, n - 3) + "...").otherwise(text)


def _label(key: str = "key", title: str = "title", item_id: str = "item_id") -> pl.Expr:
    """``ABC-1 'Title'``: what a steering meeting recognises."""
    return pl.format("{} '{}'", pl.coalesce(key, item_id, pl.lit("?")), _short(title))


def _fmt_date(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.dt.strftime("%Y-%m-%d").fill_null("?")


def _txt(col: str | pl.Expr, missing: str = "?") -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.String).fill_null(missing)


def _num(expr: pl.Expr) -> pl.Expr:
    """Integer-looking floats without the trailing .0, one decimal otherwise."""
    rounded = expr.round(1)
    return (
        pl.when(rounded == rounded.floor())
        .then(rounded.cast(pl.Int64).cast(pl.String))
        .otherwise(rounded.cast(pl.String))
    )


def _join_list(col: str, n: int = 3) -> pl.Expr:
    """First n entries of a list column joined by ', ', plus 'and k more'."""
    more = pl.col(col).list.len().cast(pl.Int64) - n  # list.len() is unsigned
    head = pl.col(col).list.head(n).list.join(", ")
    return pl.when(more > 0).then(pl.format("{} and {} more", head, more)).otherwise(head)


def _empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema={c: FINDINGS_SCHEMA[c] for c in (*_ITEM, "message", "since")})


# --------------------------------------------------------------------------- the rules


@_rule(
    "orphan_work",
    "Work with no path up to an epic",
    "Alignment: every feature and story should serve an epic (and through it a goal); work that "
    "hangs loose cannot be prioritised against the strategy.",
    "warning",
    "Team PO",
)
def _orphan_work(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    items = ctx.items.filter(pl.col("level").is_in(list(t["levels"])))
    if not t["include_done"]:
        items = items.filter(pl.col("_open"))
    anchored = ctx.ancestors.filter(pl.col("anc_level").is_in(["epic", "initiative"]))
    return items.join(anchored.select("item_id").unique(), on="item_id", how="anti").select(
        *_ITEM,
        pl.format(
            "{} {} has no path up to an epic or initiative: link it to the epic it serves or stop it",
            "_type",
            _label(),
        ).alias("message"),
        pl.col("created").alias("since"),
    )


@_rule(
    "epic_without_strategic_parent",
    "Epic not under an initiative",
    "Strategic alignment: where an organisation steers with initiatives, each epic should trace "
    "to one, or the portfolio cannot show what the strategy gets.",
    "warning",
    "Chief PO",
)
def _epic_without_parent(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    uses = ctx.items.filter(pl.col("level") == "initiative").select("organisation").unique()
    epics = ctx.items.filter(pl.col("level") == "epic").join(uses, on="organisation", how="semi")
    if not t["include_done"]:
        epics = epics.filter(pl.col("_open"))
    under = ctx.ancestors.filter(pl.col("anc_level") == "initiative").select("item_id").unique()
    return epics.join(under, on="item_id", how="anti").select(
        *_ITEM,
        pl.format(
            "Epic {} is not under an initiative, while {} steers with initiatives: "
            "link it to the initiative it serves",
            _label(),
            _txt("organisation"),
        ).alias("message"),
        pl.col("created").alias("since"),
    )


@_rule(
    "no_owner",
    "Epic or feature without an owner",
    "Ownership: a large piece of work nobody owns is nobody's priority; someone must answer for "
    "its scope and progress.",
    "warning",
    "Chief PO",
)
def _no_owner(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    items = ctx.items.filter(
        pl.col("level").is_in(list(t["levels"]))
        & (pl.col("assignee").is_null() | (pl.col("assignee").str.strip_chars() == ""))
    )
    if not t["include_done"]:
        items = items.filter(pl.col("_open"))
    return items.select(
        *_ITEM,
        pl.format("{} {} has no assignee: name an owner", "_type", _label()).alias("message"),
        pl.col("created").alias("since"),
        pl.when(pl.col("level") == "epic")
        .then(pl.lit("Chief PO"))
        .otherwise(pl.lit("Team PO"))
        .alias("owner_role"),
    )


def _delivery(ctx: RuleContext, levels: Sequence[str]) -> pl.DataFrame:
    """Items of ``levels`` whose parent is not itself of ``levels`` (sub-tasks excluded)."""
    parents = ctx.items.select(pl.col("item_id").alias("parent_id"), pl.col("level").alias("_pl"))
    return (
        ctx.items.filter(pl.col("level").is_in(list(levels)))
        .join(parents, on="parent_id", how="left")
        .filter(~pl.col("_pl").is_in(list(levels)).fill_null(False))
        .drop("_pl")
    )


@_rule(
    "unestimated_committed",
    "Committed work without an estimate",
    "Sprint planning: items taken into an active or upcoming sprint need an estimate, or the "
    "forecast and velocity of the team mean nothing.",
    "warning",
    "Team PO",
)
def _unestimated_committed(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    states = [s.lower() for s in t["sprint_states"]]
    sprints = (
        ctx.sprints.filter(pl.col("_state").is_in(states))
        .select(
            "sprint_id", pl.col("name").alias("_sprint"), pl.col("start").alias("_start"), "_state"
        )
        .unique("sprint_id", keep="first", maintain_order=True)  # once, whichever teams it serves
    )
    items = (
        _delivery(ctx, t["levels"])
        .filter(pl.col("_open") & pl.col("estimate").is_null())
        .join(sprints, on="sprint_id", how="inner")
    )
    return items.select(
        *_ITEM,
        pl.format(
            "{} {} is in {} sprint '{}' without an estimate: estimate it in refinement",
            "_type",
            _label(),
            "_state",
            _txt("_sprint"),
        ).alias("message"),
        pl.min_horizontal("_start", _lit_ts(ctx.as_of)).alias("since"),
        pl.when(pl.col("_state") == "active")
        .then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
        .alias("severity"),
    )


def _open_edges(ctx: RuleContext) -> pl.LazyFrame:
    """Resolved edges with both ends known and open (neither end done); lazy, so a rule's own
    filter runs in the same pass and only the rows it keeps are copied."""
    return ctx.edges.lazy().filter(
        pl.col("dependent_id").is_not_null()
        & ~pl.col("unresolved").fill_null(False)
        & (pl.col("blocker_category").is_not_null() & (pl.col("blocker_category") != "done"))
        & (pl.col("dependent_category") != "done").fill_null(True)
    )


def _priority_label(col: str) -> pl.Expr:
    return (
        pl.when(pl.col(col).is_null())
        .then(pl.lit("unprioritised"))
        .otherwise(pl.format("P{}", pl.col(col)))
    )


@_rule(
    "priority_inversion",
    "High-priority work waits on lower-priority work of another team",
    "Backlogs must respect dependencies: when team A's top item needs team B's item, B's item "
    "must be at least as important, or A waits (MetaScrum ordering).",
    "warning",
    "Chief PO",
)
def _priority_inversion(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    lower = pl.col("blocker_priority_rank") > pl.col("dependent_priority_rank")
    if t["unprioritised_is_low"]:
        lower = lower | pl.col("blocker_priority_rank").is_null()
    edges = (
        _open_edges(ctx)
        .filter(
            pl.col("cross_team").fill_null(False)
            & (pl.col("dependent_priority_rank") <= t["max_rank"])
            & lower.fill_null(False)
        )
        .collect()
    )
    created = ctx.items.select("item_id", "created")
    edges = edges.join(
        created.rename({"item_id": "dependent_id", "created": "_dc"}), on="dependent_id", how="left"
    ).join(created.rename({"item_id": "blocker_id", "created": "_bc"}), on="blocker_id", how="left")
    per_blocker = (
        edges.sort("dependent_priority_rank", "dependent_key")
        .group_by("blocker_id")
        .agg(
            pl.col("blocker_key", "blocker_url", "blocker_title", "blocker_team", "blocker_org")
            .first()
            .name.keep(),
            pl.col("blocker_priority_rank").first(),
            pl.format(
                "{} ({}, {})",
                _txt("dependent_key"),
                _priority_label("dependent_priority_rank"),
                _txt("dependent_team"),
            )
            .unique(maintain_order=True)
            .alias("_deps"),
            pl.col("_bc").first(),
            pl.col("_dc").min(),
        )
    )
    return per_blocker.select(
        pl.col("blocker_id").alias("item_id"),
        pl.col("blocker_key").alias("key"),
        pl.col("blocker_url").alias("url"),
        pl.col("blocker_team").alias("team"),
        pl.col("blocker_org").alias("organisation"),
        pl.format(
            "{} ({}, {}) blocks higher-priority work of other teams: {}; raise its priority or "
            "re-plan the dependent work",
            _label("blocker_key", "blocker_title", "blocker_id"),
            _priority_label("blocker_priority_rank"),
            _txt("blocker_team"),
            _join_list("_deps"),
        ).alias("message"),
        pl.max_horizontal("_bc", "_dc").alias("since"),
    )


@_rule(
    "dependency_timing_conflict",
    "Dependent work planned before its blocker",
    "Integrated planning: an item planned to finish before the item it depends on (or whose "
    "blocker is not planned at all) will slip; the Scrum of Scrums must re-plan one of them.",
    "warning",
    "SoS Master",
)
def _timing_conflict(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    timings = ["conflict", "unscheduled_blocker"] if t["unscheduled_blocker"] else ["conflict"]
    edges = (
        ctx.edges.lazy()
        .filter(
            pl.col("dependent_id").is_not_null()
            & pl.col("open").fill_null(True)
            & pl.col("timing").is_in(timings)
        )
        .with_columns(
            pl.when(
                (pl.col("timing") == "conflict")
                & (pl.col("slip_days") >= t["critical_slip_days"]).fill_null(False)
            )
            .then(2)
            .otherwise(1)
            .alias("_sev")
        )
        # only the columns the message needs: the per-dependent "first" below moves them all
        .select(
            "_sev",
            "timing",
            "slip_days",
            "cross_team",
            *(
                f"dependent_{c}"
                for c in ("id", "key", "url", "title", "team", "org", "planned_end")
            ),
            *(f"blocker_{c}" for c in ("id", "key", "team", "org", "planned_end")),
        )
        .collect()
    )
    created = ctx.items.select("item_id", "created")
    edges = edges.join(
        created.rename({"item_id": "dependent_id", "created": "_dc"}), on="dependent_id", how="left"
    ).join(created.rename({"item_id": "blocker_id", "created": "_bc"}), on="blocker_id", how="left")
    worst = (
        edges.sort(
            ["dependent_id", "_sev", "slip_days", "blocker_key"],
            descending=[False, True, True, False],
            nulls_last=True,
        )
        .group_by("dependent_id", maintain_order=True)
        .agg(
            pl.all().first(),
            pl.len().alias("_n"),
            pl.col("cross_team").fill_null(False).any().alias("_cross"),
            pl.max_horizontal("_bc", "_dc").min().alias("_since"),
        )
    )
    blocker = pl.format(
        "{} ({}, {})", _txt("blocker_key"), _txt("blocker_team"), _txt("blocker_org")
    )
    more = (
        pl.when(pl.col("_n") > 1)
        .then(pl.format(" (+{} more)", pl.col("_n") - 1))
        .otherwise(pl.lit(""))
    )
    conflict = pl.format(
        "{} is planned to finish {}, {} days before its blocker {} is planned to finish {}: "
        "re-plan one of them{}",
        _label("dependent_key", "dependent_title", "dependent_id"),
        _fmt_date("dependent_planned_end"),
        _txt("slip_days"),
        blocker,
        _fmt_date("blocker_planned_end"),
        more,
    )
    unscheduled = pl.format(
        "{} is planned to finish {} but its blocker {} is not planned at all: get it scheduled{}",
        _label("dependent_key", "dependent_title", "dependent_id"),
        _fmt_date("dependent_planned_end"),
        blocker,
        more,
    )
    return worst.select(
        pl.col("dependent_id").alias("item_id"),
        pl.col("dependent_key").alias("key"),
        pl.col("dependent_url").alias("url"),
        pl.col("dependent_team").alias("team"),
        pl.col("dependent_org").alias("organisation"),
        pl.when(pl.col("timing") == "conflict")
        .then(conflict)
        .otherwise(unscheduled)
        .alias("message"),
        pl.col("_since").alias("since"),
        pl.when(pl.col("_sev") == 2)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning"))
        .alias("severity"),
        pl.when(pl.col("_cross"))
        .then(pl.lit("SoS Master"))
        .otherwise(pl.lit("Team PO"))
        .alias("owner_role"),
    )


def _team_hits(frame: pl.DataFrame, message: pl.Expr, since: pl.Expr) -> pl.DataFrame:
    """Team-level findings: item_id, key and url are null."""
    return frame.select(
        pl.lit(None, pl.String).alias("item_id"),
        pl.lit(None, pl.String).alias("key"),
        pl.lit(None, pl.String).alias("url"),
        "team",
        "organisation",
        message.alias("message"),
        since.alias("since"),
    )


_WEEKDAY = pl.col("_latest").dt.strftime("%a")


@_rule(
    "sprint_cadence_misalignment",
    "Team off the organisation's sprint cadence",
    "Scrum@Scale runs all teams on one cadence so that Scrum of Scrums, integration and review "
    "happen together; different sprint boundaries delay every cross-team hand-off.",
    "warning",
    "SoS Master",
)
def _sprint_cadence(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    window_start = ctx.as_of - timedelta(weeks=t["window_weeks"])
    sprints = (
        ctx.sprints.filter(
            pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
            & pl.col("team").is_not_null()
            & (pl.col("start") <= _lit_ts(ctx.as_of))
            & (pl.col("end") >= _lit_ts(window_start))
        )
        .with_columns(
            pl.col("start").dt.date().alias("_d"),
            _days("start", "end").alias("_len"),
            pl.col("start").alias("_start"),
        )
        .sort("organisation", "team", "_d")
        .unique(["organisation", "team", "_d"], keep="first", maintain_order=True)
    )
    if sprints.height == 0:
        return _empty_hits()
    keys = ["organisation", "team"]
    gaps = (
        sprints.with_columns((pl.col("_d") - pl.col("_d").shift(1).over(keys)).dt.total_days())
        .select(*keys, pl.col("_d").alias("_gap"))
        .filter(pl.col("_gap").is_not_null())
        .group_by(*keys, "_gap")
        .len()
        .sort(*keys, "len", "_gap", descending=[False, False, True, False])
        .unique(keys, keep="first", maintain_order=True)
        .select(*keys, "_gap")
    )
    teams = (
        sprints.group_by(keys)
        .agg(
            pl.col("_d").max().alias("_latest"),
            pl.col("_start").min().alias("_first"),
            pl.col("_len").median().alias("_median_len"),
        )
        .join(gaps, on=keys, how="left", nulls_equal=True)
        .with_columns(
            pl.coalesce(
                pl.col("_gap"),
                ((pl.col("_median_len") / 7).round(0) * 7).clip(7, None).cast(pl.Int64),
            ).alias("_L")
        )
        .with_columns(
            ((pl.col("_latest") - pl.lit(_EPOCH_MONDAY)).dt.total_days() % pl.col("_L")).alias(
                "_phase"
            ),
            pl.len().over("organisation").alias("_teams"),
        )
        .filter(pl.col("_teams") >= t["min_teams"])
    )
    counts = teams.group_by("organisation", "_L", "_phase").agg(
        pl.len().alias("_n"), pl.col("_latest").max().alias("_ref_latest")
    )
    best = counts.with_columns(
        pl.col("_n").max().over("organisation").alias("_best"),
    ).filter(pl.col("_n") == pl.col("_best"))
    ties = best.group_by("organisation").agg(
        pl.len().alias("_ties"), pl.col("_n").first().alias("_best")
    )
    majority = best.join(
        ties.filter(pl.col("_ties") == 1), on="organisation", how="semi", nulls_equal=True
    ).select(
        "organisation",
        pl.col("_L").alias("_mL"),
        pl.col("_phase").alias("_mphase"),
        "_ref_latest",
        pl.col("_n").alias("_mn"),
    )
    variants = counts.group_by("organisation").len().rename({"len": "_variants"})
    joined = (
        teams.join(majority, on="organisation", how="left", nulls_equal=True)
        .join(variants, on="organisation", how="left", nulls_equal=True)
        .filter(
            pl.col("_mL").is_null()
            | (pl.col("_L") != pl.col("_mL"))
            | (pl.col("_phase") != pl.col("_mphase"))
        )
    )
    own = pl.format(
        "Team {} of {} runs {}-day sprints (latest started {} {})",
        "team",
        _txt("organisation"),
        "_L",
        _WEEKDAY,
        _fmt_date("_latest"),
    )
    message = (
        pl.when(pl.col("_mL").is_null())
        .then(
            pl.format(
                "{}; the {} teams of {} follow {} different cadences with no majority: agree one "
                "sprint cadence",
                own,
                "_teams",
                _txt("organisation"),
                "_variants",
            )
        )
        .otherwise(
            pl.format(
                "{}, while {} of its {} teams run {}-day sprints (latest started {} {}): align "
                "the sprint boundaries",
                own,
                "_mn",
                "_teams",
                "_mL",
                pl.col("_ref_latest").dt.strftime("%a"),
                _fmt_date("_ref_latest"),
            )
        )
    )
    return _team_hits(joined, message, pl.col("_first"))


@_rule(
    "dod_drift",
    "Workflows (Definition of Done) drift between teams of one product",
    "One product, one Definition of Done: teams that build one product should follow the same "
    "workflow to done; items that skip a required state (e.g. review) are not done by that DoD.",
    "warning",
    "SoS Master",
)
def _dod_drift(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    window_start = _lit_ts(ctx.as_of - timedelta(days=t["window_days"]))
    levels = list(t["levels"])
    scoped = ctx.items.filter(pl.col("level").is_in(levels) & pl.col("team").is_not_null())
    recent = scoped.filter(pl.col("_open") | (pl.col("updated") >= window_start))
    # lazy and narrow: recent changes are never materialised with all their columns
    changes = (
        ctx.status_changes.lazy()
        .filter(pl.col("at") >= window_start)
        .select("item_id", "from_status", "to_status")
        .join(scoped.lazy().select("item_id", "organisation", "team"), on="item_id", how="inner")
    )
    seen = (
        pl.concat(
            [
                recent.lazy().select("organisation", "team", pl.col("raw_status").alias("_s")),
                changes.select("organisation", "team", pl.col("from_status").alias("_s")),
                changes.select("organisation", "team", pl.col("to_status").alias("_s")),
            ]
        )
        .unique()  # few distinct (team, status) pairs: normalise those, not every change
        .with_columns(pl.col("_s").str.strip_chars().str.to_lowercase())
        .filter(pl.col("_s").is_not_null() & (pl.col("_s") != ""))
        .collect()
    )
    counted = recent.group_by("organisation", "team").len().filter(pl.col("len") >= t["min_items"])
    products = {str(k): str(v) for k, v in t["products"].items()}
    sets = (
        seen.join(counted, on=["organisation", "team"], how="semi")
        .group_by("organisation", "team")
        .agg(pl.col("_s").unique().sort().alias("_set"))
        .with_columns(
            pl.col("team")
            .replace_strict(products, default=pl.col("organisation"), return_dtype=pl.String)
            .alias("_product"),
            pl.col("_set").list.join("|").alias("_sig"),
        )
        .with_columns(pl.len().over("_product").alias("_teams"))
        .filter(pl.col("_teams") >= 2)
    )
    counts = sets.group_by("_product", "_sig").agg(
        pl.len().alias("_n"), pl.col("_set").first().alias("_mset")
    )
    best = counts.filter(pl.col("_n") == pl.col("_n").max().over("_product"))
    majority = best.filter(pl.len().over("_product") == 1).select(
        "_product", pl.col("_sig").alias("_msig"), "_mset", pl.col("_n").alias("_mn")
    )
    variants = counts.group_by("_product").len().rename({"len": "_variants"})
    drift = (
        sets.join(majority, on="_product", how="left")
        .join(variants, on="_product", how="left")
        .filter(pl.col("_msig").is_null() | (pl.col("_sig") != pl.col("_msig")))
        .with_columns(
            pl.col("_set").list.set_difference("_mset").list.sort().alias("_extra"),
            pl.col("_mset").list.set_difference("_set").list.sort().alias("_missing"),
        )
    )
    level_name = "/".join(levels)
    message = (
        pl.when(pl.col("_msig").is_null())
        .then(
            pl.format(
                "Team {}: the {} teams of product {} use {} different {} workflows with no "
                "majority: agree one workflow and Definition of Done",
                "team",
                "_teams",
                "_product",
                "_variants",
                pl.lit(level_name),
            )
        )
        .otherwise(
            pl.format(
                "Team {} uses a {} workflow that differs from the one {} of {} teams of product {} "
                "share (extra: {}; missing: {}): align the Definition of Done",
                "team",
                pl.lit(level_name),
                "_mn",
                "_teams",
                "_product",
                pl.when(pl.col("_extra").list.len() > 0)
                .then(pl.col("_extra").list.join(", "))
                .otherwise(pl.lit("none")),
                pl.when(pl.col("_missing").list.len() > 0)
                .then(pl.col("_missing").list.join(", "))
                .otherwise(pl.lit("none")),
            )
        )
    )
    team_level = _team_hits(drift, message, pl.lit(None, UTC_TS)).with_columns(
        pl.lit(None, pl.String).alias("owner_role")
    )
    required = [str(s) for s in t["required_states"]]
    if not required:
        return team_level
    return pl.concat([team_level, _skipped_required(ctx, scoped, required, window_start)])


def _skipped_required(
    ctx: RuleContext, scoped: pl.DataFrame, required: list[str], window_start: pl.Expr
) -> pl.DataFrame:
    """Done items (done within the window, with status history) that never passed a state."""
    history = ctx.status_changes.join(scoped.select("item_id"), on="item_id", how="semi")
    done_at = (
        history.filter(pl.col("to_category") == "done")
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_done_at"))
    )
    done = (
        scoped.filter(~pl.col("_open"))
        .join(history.select("item_id").unique(), on="item_id", how="semi")
        .join(done_at, on="item_id", how="left")
        .with_columns(pl.coalesce("_done_at", "resolved").alias("_done_at"))
        .filter(pl.col("_done_at") >= window_start)
    )
    visited = pl.concat(
        [
            history.select("item_id", pl.col("to_status").alias("_s")),
            history.select("item_id", pl.col("from_status").alias("_s")),
        ]
    ).with_columns(pl.col("_s").str.strip_chars().str.to_lowercase())
    missing = pl.concat(
        [
            done.select("item_id")
            .join(visited.filter(pl.col("_s") == state.strip().lower()), on="item_id", how="anti")
            .with_columns(pl.lit(state).alias("_state"))
            for state in required
        ]
    )
    per_item = missing.group_by("item_id").agg(pl.col("_state").sort().alias("_missing"))
    return (
        done.join(per_item, on="item_id", how="inner")
        .select(
            *_ITEM,
            pl.format(
                "{} {} reached done on {} without passing {}: check it against the Definition "
                "of Done",
                "_type",
                _label(),
                _fmt_date("_done_at"),
                pl.col("_missing").list.eval(pl.format("'{}'", pl.element())).list.join(", "),
            ).alias("message"),
            pl.col("_done_at").alias("since"),
            pl.lit("Team PO").alias("owner_role"),
        )
        .select(*_ITEM, "message", "since", "owner_role")
    )


@_rule(
    "stale_work",
    "Stale work",
    "Flow and transparency: work in progress that nobody touches hides a blocker or a silent "
    "stop; an epic whose items have not moved for weeks is stalled, not progressing.",
    "warning",
    "Team PO",
)
def _stale_work(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    as_of = _lit_ts(ctx.as_of)
    wip = (
        ctx.items.filter(
            pl.col("level").is_in(list(t["levels"])) & (pl.col("status_category") == "in_progress")
        )
        .join(ctx.last_change, on="item_id", how="left")
        .with_columns(pl.max_horizontal("updated", "last_change_at").alias("_last"))
        .with_columns(_days("_last", as_of).alias("_age"))
        .filter(pl.col("_age") >= t["stale_days"])
    )
    items = wip.select(
        *_ITEM,
        pl.format(
            "{} {} has been in progress without an update for {} days (since {}): unblock it, "
            "finish it or put it back",
            "_type",
            _label(),
            pl.col("_age").floor().cast(pl.Int64),
            _fmt_date("_last"),
        ).alias("message"),
        pl.col("_last").alias("since"),
        pl.lit("Team PO").alias("owner_role"),
    )
    children = ctx.epic_of.join(
        ctx.items.select("item_id", "status_category"), on="item_id", how="inner"
    )
    progress = (  # the latest change per item is already known: max of those per epic
        ctx.last_change.join(ctx.epic_of, on="item_id", how="inner")
        .group_by("epic_id")
        .agg(pl.col("last_change_at").max().alias("_child_at"))
    )
    started = (
        children.filter(pl.col("status_category") != "todo").select("epic_id").unique()
    ).with_columns(pl.lit(True).alias("_started"))
    epics = (
        ctx.items.filter((pl.col("level") == "epic") & pl.col("_open"))
        .join(progress, left_on="item_id", right_on="epic_id", how="left")
        .join(started, left_on="item_id", right_on="epic_id", how="left")
        .with_columns(pl.coalesce("_child_at", "created").alias("_last"))
        .with_columns(_days("_last", as_of).alias("_age"))
        .filter(pl.col("_age") >= t["epic_stale_days"])
    )
    if not t["include_todo_epics"]:
        epics = epics.filter(
            (pl.col("status_category") == "in_progress") | pl.col("_started").fill_null(False)
        )
    stalled = epics.select(
        *_ITEM,
        pl.when(pl.col("_child_at").is_null())
        .then(
            pl.format(
                "Epic {} is open and none of its items has changed status in the {} days since "
                "it was created: decide to start, re-plan or stop it",
                _label(),
                pl.col("_age").floor().cast(pl.Int64),
            )
        )
        .otherwise(
            pl.format(
                "Epic {} has had no status change in any of its items for {} days (last {}): "
                "it has stalled; re-plan or stop it",
                _label(),
                pl.col("_age").floor().cast(pl.Int64),
                _fmt_date("_child_at"),
            )
        )
        .alias("message"),
        pl.col("_last").alias("since"),
        pl.lit("Chief PO").alias("owner_role"),
    )
    return pl.concat([items, stalled])


@_rule(
    "done_but_open",
    "Epic status contradicts its items",
    "Transparency: a closed epic with open items hides remaining work; an open epic whose items "
    "are all done inflates WIP and hides delivered value.",
    "warning",
    "Chief PO",
)
def _done_but_open(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    children = (
        ctx.epic_of.join(
            ctx.items.select("item_id", "key", "_open", "resolved", "updated"),
            on="item_id",
            how="inner",
        )
        .sort("key")
        .group_by("epic_id")
        .agg(
            pl.len().alias("_n"),
            pl.col("_open").sum().alias("_n_open"),
            pl.col("key").filter(pl.col("_open")).alias("_open_keys"),
            pl.coalesce("resolved", "updated").filter(~pl.col("_open")).max().alias("_last_done"),
        )
    )
    epics = ctx.items.filter(pl.col("level") == "epic").join(
        children, left_on="item_id", right_on="epic_id", how="inner"
    )
    closed = epics.filter(~pl.col("_open") & (pl.col("_n_open") > 0)).select(
        *_ITEM,
        pl.format(
            "Epic {} is closed but {} of its {} items are still open ({}): reopen the epic or "
            "close or move the items",
            _label(),
            "_n_open",
            "_n",
            _join_list("_open_keys"),
        ).alias("message"),
        pl.coalesce("resolved", "updated").alias("since"),
        pl.lit("warning").alias("severity"),
    )
    finished = epics.filter(pl.col("_open") & (pl.col("_n_open") == 0)).select(
        *_ITEM,
        pl.format(
            "Epic {} is still open although all {} of its items are done: close it or add the "
            "remaining work",
            _label(),
            "_n",
        ).alias("message"),
        pl.col("_last_done").alias("since"),
        pl.lit("info").alias("severity"),
    )
    return pl.concat([closed, finished])


@_rule(
    "epic_spread",
    "Epic spread over too many teams",
    "Team autonomy and dependencies: an epic whose open work sits in many teams needs constant "
    "coordination; slice it along team lines or give it one lead team.",
    "warning",
    "Chief PO",
)
def _epic_spread(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    teams = (
        ctx.epic_of.join(
            ctx.items.filter(pl.col("_open") & pl.col("team").is_not_null()).select(
                "item_id", pl.col("team").alias("_t")
            ),
            on="item_id",
            how="inner",
        )
        .group_by("epic_id")
        .agg(pl.col("_t").unique().sort().alias("_teams"))
        .with_columns(pl.col("_teams").list.len().alias("_n"))
        .filter(pl.col("_n") > t["max_teams"])
    )
    return (
        ctx.items.filter((pl.col("level") == "epic") & pl.col("_open"))
        .join(teams, left_on="item_id", right_on="epic_id", how="inner")
        .select(
            *_ITEM,
            pl.format(
                "Epic {} has open work in {} teams ({}), more than {}: slice it along team lines "
                "or name one lead team",
                _label(),
                "_n",
                _join_list("_teams", 6),
                pl.lit(t["max_teams"]),
            ).alias("message"),
            pl.col("created").alias("since"),
        )
    )


@_rule(
    "wip_overload",
    "Team works on too much at once",
    "Flow (Little's law): more work in progress means longer cycle times and later delivery for "
    "everyone who depends on the team; stop starting, start finishing.",
    "warning",
    "Team PO",
)
def _wip_overload(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    keys = ["organisation", "team"]
    items = ctx.items.filter(
        pl.col("level").is_in(list(t["levels"])) & pl.col("team").is_not_null()
    )
    current = (
        items.filter(pl.col("_open") & (pl.col("status_category") == "in_progress"))
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("_wip"))
    )
    if current.height == 0:
        return _empty_hits()
    limits = pl.DataFrame(
        {"team": [str(k) for k in t["limits"]], "_limit": [float(v) for v in t["limits"].values()]},
        schema={"team": pl.String, "_limit": pl.Float64},
    )
    series = _daily_wip(ctx, items, int(t["history_days"]))
    n_days = int(t["history_days"])
    usual = (
        series.group_by(keys)
        .agg(
            pl.len().alias("_days"),
            pl.col("_v").quantile(float(t["percentile"]), interpolation="linear").alias("_p"),
        )
        .with_columns(
            pl.when(pl.col("_days") >= t["min_history_days"]).then(pl.col("_p")).alias("_p")
        )
    )
    over = (
        current.join(limits, on="team", how="left")
        .join(usual, on=keys, how="left", nulls_equal=True)
        .with_columns(
            (pl.col("_wip") > pl.col("_limit")).fill_null(False).alias("_over_limit"),
            (pl.col("_wip") > pl.col("_p")).fill_null(False).alias("_over_usual"),
        )
        .filter(pl.col("_over_limit") | pl.col("_over_usual"))
        .with_columns(
            pl.when(pl.col("_over_limit"))
            .then(pl.col("_limit"))
            .otherwise(pl.col("_p"))
            .alias("_thr")
        )
    )
    # since: the first day-end measured above the breached threshold, after the last one at or
    # under it (day resolution); null when the team has no status history
    day0 = _day_floor(ctx.as_of) - timedelta(days=n_days)
    last_ok = (
        series.join(over.select(*keys, "_thr"), on=keys, how="inner", nulls_equal=True)
        .group_by(keys)
        .agg(
            pl.col("_k").filter(pl.col("_v") <= pl.col("_thr")).max().alias("_k_ok"),
            pl.col("_k").min().alias("_k0"),
        )
        .with_columns(
            pl.when(pl.col("_k_ok").is_null())
            .then(pl.col("_k0"))
            .otherwise(pl.min_horizontal(pl.col("_k_ok") + 1, pl.lit(n_days - 1)))
            .alias("_k_since")
        )
        .select(
            *keys,
            (_lit_ts(day0) + pl.duration(days=pl.col("_k_since") + 1)).alias("_since"),
        )
    )
    pct = round(float(t["percentile"]) * 100)
    usual_txt = pl.format(
        "its usual level ({}th percentile of daily WIP over the last {} days: {})",
        pl.lit(pct),
        pl.lit(n_days),
        _num(pl.col("_p")),
    )
    limit_txt = pl.format("its WIP limit of {}", _num(pl.col("_limit")))
    above = (
        pl.when(pl.col("_over_limit") & pl.col("_over_usual"))
        .then(pl.format("{} and {}", limit_txt, usual_txt))
        .when(pl.col("_over_limit"))
        .then(limit_txt)
        .otherwise(usual_txt)
    )
    out = over.join(last_ok, on=keys, how="left", nulls_equal=True)
    return out.select(
        pl.lit(None, pl.String).alias("item_id"),
        pl.lit(None, pl.String).alias("key"),
        pl.lit(None, pl.String).alias("url"),
        "team",
        "organisation",
        pl.format(
            "Team {} has {} items in progress, above {}: stop starting, finish work first",
            "team",
            "_wip",
            above,
        ).alias("message"),
        pl.col("_since").alias("since"),
        pl.when(pl.col("_over_limit"))
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning"))
        .alias("severity"),
    )


def _day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _daily_wip(ctx: RuleContext, items: pl.DataFrame, n_days: int) -> pl.DataFrame:
    """(organisation, team, _k, _v): items in progress at the end of each of the last n days.

    Day k (0..n-1) is measured at t_k = floor(as_of) - n days + (k+1) days. Each in-progress
    interval [at, next change) adds +1 at its first covered day and -1 after its last (a
    difference array), so the cost is per interval, not per interval-day. A team's series starts
    at the first day-end after its first recorded status change.
    """
    keys = ["organisation", "team"]
    day0 = _day_floor(ctx.as_of) - timedelta(days=n_days)
    d0 = _lit_ts(day0)
    # items by row number (``_row`` of ctx.items): the sort groups each item's changes without
    # comparing id strings; team keys go only onto the few rows that need them
    team_of = (
        ctx.items.select("item_id")
        .with_row_index("_row")
        .join(items.select("item_id", *keys), on="item_id", how="inner")
        .drop("item_id")
    )
    changes = (
        ctx.status_changes.select("_row", "at", "change_id", "to_category")
        .join(team_of.select("_row"), on="_row", how="semi")
        .sort("_row", "at", "change_id")
        .with_columns(  # the item's next change (sorted, so a shift, not a window per item)
            pl.when(pl.col("_row").shift(-1) == pl.col("_row"))
            .then(pl.col("at").shift(-1))
            .alias("_next")
        )
    )

    def first_k(col: str) -> pl.Expr:
        """Index of the first day-end at or after the moment in ``col`` (0 at the earliest)."""
        return (_days(d0, col).ceil() - 1).clip(0, None).cast(pl.Int64)

    intervals = (
        changes.filter(pl.col("to_category") == "in_progress")
        .with_columns(
            first_k("at").alias("_a"),
            pl.when(pl.col("_next").is_null())
            .then(pl.lit(n_days - 1, pl.Int64))
            .otherwise((_days(d0, "_next").ceil() - 2).cast(pl.Int64))
            .clip(None, n_days - 1)
            .alias("_b"),
        )
        .filter(pl.col("_a") <= pl.col("_b"))
        .join(team_of, on="_row", how="inner", maintain_order="left")
    )
    deltas = pl.concat(
        [
            intervals.select(*keys, pl.col("_a").alias("_k"), pl.lit(1, pl.Int64).alias("_d")),
            intervals.filter(pl.col("_b") < n_days - 1).select(
                *keys, (pl.col("_b") + 1).alias("_k"), pl.lit(-1, pl.Int64).alias("_d")
            ),
        ]
    )
    starts = (
        changes.filter(pl.col("_row").is_first_distinct())  # each item's earliest change
        .join(team_of, on="_row", how="inner")
        .group_by(keys)
        .agg(pl.col("at").min().alias("_first"))
        .with_columns(first_k("_first").alias("_k0"))
        .filter(pl.col("_k0") <= n_days - 1)
    )
    grid = starts.select(*keys, "_k0").join(
        pl.DataFrame({"_k": pl.int_range(0, n_days, eager=True).cast(pl.Int64)}), how="cross"
    )
    summed = deltas.group_by(*keys, "_k").agg(pl.col("_d").sum())
    return (
        grid.join(summed, on=[*keys, "_k"], how="left", nulls_equal=True)
        .sort(*keys, "_k")
        .with_columns(pl.col("_d").fill_null(0).cum_sum().over(keys).alias("_v"))
        .filter(pl.col("_k") >= pl.col("_k0"))
        .select(*keys, "_k", "_v")
    )


# ---- duplicate effort

_STOP_TEXT = (
    # English
    "a an the and or but if then else of at by for with about against between into through "
    "during before after above below to from up down in out on off over under again further once "
    "here there when where why how all any both each few more most other some such no nor not "
    "only own same so than too very can will just should now is are was were be been being have "
    "has had having do does did doing i me my we our you your he him his she her it its they them "
    "their what which who whom this that these those as until while via per am also "
    # Dutch
    "de het een en of maar van in op te voor met aan bij door naar om uit tot over als dan dat die "
    "dit deze er is zijn was waren wordt worden werd kan kunnen moet moeten niet geen ook nog al "
    "wel zo toe tegen onder na zonder ik je jij u hij zij ze we wij jullie hun hen haar mijn uw "
    "ons onze wat wie welke waar hoe hebben heeft had"
)
STOP_WORDS: frozenset[str] = frozenset(_STOP_TEXT.split())


def title_tokens(titles: pl.DataFrame, id_col: str = "item_id") -> pl.DataFrame:
    """(id, token) rows: the normalised token set of each title, vectorised over all titles.

    Lowercase; everything but letters and digits separates words; one-letter words and stop
    words (English and Dutch) dropped; a trailing plural "s" stripped from words of more than 3 letters (not "ss").
    """
    return _token_rows(titles, id_col).unique()


def _token_rows(titles: pl.DataFrame, id_col: str = "item_id") -> pl.DataFrame:
    """``title_tokens`` before de-duplication (a title may repeat a token): a caller that groups
    per id anyway de-duplicates per group, cheaper than one unique over every row."""
    token = pl.col("token")
    return (
        titles.select(
            id_col,
            pl.col("title")
            .fill_null("")
            .str.to_lowercase()
            .str.replace_all(r"[^\p{L}\p{N}]+", " ")
            .str.strip_chars()
            .str.split(" ")
            .alias("token"),
        )
        .explode("token")
        .filter((token.str.len_chars() > 1) & ~token.is_in(list(STOP_WORDS)))
        .with_columns(
            pl.when(
                (token.str.len_chars() > 3) & token.str.ends_with("s") & ~token.str.ends_with("ss")
            )
            .then(token.str.slice(0, token.str.len_chars() - 1))
            .otherwise(token)
        )
    )


def similar_title_sets(
    tokens: pl.DataFrame,
    min_jaccard: float,
    min_tokens: int,
    max_block: int,
    id_col: str = "item_id",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Group identical token sets, then find similar pairs of sets by prefix filtering.

    ``tokens``: (id, token) rows; a token repeated for one id counts once (an integer id, such as
    a row number, groups fastest). Returns (sets: id -> set_id, pairs: set_a, set_b, jaccard with
    a != b, both directions); set ids number the distinct sets in the order of their sorted tokens.
    Tokens are ordered rarest first; two sets with Jaccard >= t must share one of the first
    n - ceil(t n) + 1 tokens of each (prefix filtering), so only sets that share a prefix token
    are compared, and only when their sizes allow t. Exact Jaccard is computed for those
    candidates only. A prefix token shared by more than ``max_block`` sets is skipped (such a
    token is common to so many titles that it cannot be a rarest token of near-duplicates).
    """
    eps = 1e-9
    new_sig = (pl.col("_sig") != pl.col("_sig").shift()).fill_null(True)
    per_item = (
        tokens.group_by(id_col)
        .agg(pl.col("token").unique().sort().alias("_toks"))
        .with_columns(pl.col("_toks").list.len().alias("_n"))
        .filter(pl.col("_n") >= min_tokens)
        .with_columns(pl.col("_toks").list.join("\x1f").alias("_sig"))
        .sort("_sig")  # identical sets are one run; a run's number is its set id
        .with_columns((new_sig.cum_sum() - 1).cast(pl.Int64).alias("set_id"))
    )
    sets = per_item.filter(new_sig).select("set_id", "_toks", "_n")
    item_sets = per_item.select(id_col, "set_id")
    exploded = sets.select("set_id", "_n", pl.col("_toks").alias("token")).explode("token")
    # rarest first: document frequency, ties in token order (a set's tokens are sorted already,
    # and the stable sort keeps that order)
    freq = exploded.group_by("token").len().rename({"len": "_df"})
    ranked = exploded.join(freq, on="token", how="inner", maintain_order="left").sort(
        "set_id", "_df", maintain_order=True
    )
    # position within its set: every set is one run of _n rows (its tokens are unique)
    sizes = sets["_n"].to_numpy().astype(np.int64)
    position = np.arange(ranked.height) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    prefix = (
        ranked.with_columns(pl.Series("_pos", position))
        .filter(
            pl.col("_pos")
            < pl.col("_n") - (pl.col("_n") * min_jaccard - eps).ceil().cast(pl.Int64) + 1
        )
        .filter(pl.col("_df") <= max_block)
        .select("set_id", "token", "_n")
    )
    cand = (
        prefix.join(prefix, on="token", how="inner", suffix="_b")
        .filter(pl.col("set_id") < pl.col("set_id_b"))
        .filter(
            (pl.col("_n_b") >= pl.col("_n") * min_jaccard - eps)
            & (pl.col("_n") >= pl.col("_n_b") * min_jaccard - eps)
        )
        .select(pl.col("set_id").alias("set_a"), pl.col("set_id_b").alias("set_b"))
        .unique()
    )
    toks = sets.select("set_id", "_toks", "_n")
    pairs = (
        cand.join(toks.rename({"set_id": "set_a"}), on="set_a", how="inner")
        .join(toks.rename({"set_id": "set_b"}), on="set_b", how="inner", suffix="_b")
        .with_columns(pl.col("_toks").list.set_intersection("_toks_b").list.len().alias("_i"))
        .with_columns(
            (pl.col("_i") / (pl.col("_n") + pl.col("_n_b") - pl.col("_i"))).alias("jaccard")
        )
        .filter(pl.col("jaccard") >= min_jaccard - eps)
        .select("set_a", "set_b", "jaccard")
    )
    both = pl.concat(
        [
            pairs,
            pairs.select(pl.col("set_b").alias("set_a"), pl.col("set_a").alias("set_b"), "jaccard"),
        ]
    )
    return item_sets, both


@_rule(
    "duplicate_effort",
    "Near-identical work in different teams",
    "Chain and portfolio efficiency: two teams (or two organisations) building the same thing "
    "waste capacity; agree who does it and link the items.",
    "warning",
    "Chief PO",
)
def _duplicate_effort(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    scope = ctx.items.filter(pl.col("_open") & pl.col("level").is_in(list(t["levels"])))
    if scope.height < 2:
        return _empty_hits()
    scope = scope.select(
        "item_id", "key", "title", "level", "team", "organisation", "created", "url", "_type"
    ).with_row_index("_row")
    item_sets, pairs = similar_title_sets(
        _token_rows(scope.select("_row", "title"), "_row"),
        float(t["min_jaccard"]),
        int(t["min_tokens"]),
        int(t["max_block"]),
        id_col="_row",
    )
    members = (
        scope.join(item_sets, on="_row", how="inner", maintain_order="left")
        .drop("_row")
        .with_columns(pl.len().over("set_id").alias("_size"))
        .filter(pl.col("_size") <= t["max_group"])
        # an item alone with its token set and in no similar pair has no partner: drop it early
        .filter((pl.col("_size") > 1) | pl.col("set_id").is_in(pairs["set_a"].implode()))
        .with_columns(
            pl.col("team").fill_null("").alias("_t"),
            pl.col("organisation").fill_null("").alias("_o"),
        )
    )
    gkeys = ["set_id", "level", "_t", "_o"]
    groups = (
        members.sort("key", "item_id")
        .group_by(gkeys)
        .agg(
            pl.len().alias("_count"),
            pl.col("key", "title", "team", "organisation", "created", "item_id")
            .first()
            .name.prefix("p_"),
        )
    )
    self_pairs = groups.select(
        pl.col("set_id").alias("set_a"),
        pl.col("set_id").alias("set_b"),
        pl.lit(1.0).alias("jaccard"),
    ).unique()
    links = pl.concat([self_pairs, pairs]).unique(["set_a", "set_b"])
    partners = (
        groups.select(*gkeys)
        .join(links, left_on="set_id", right_on="set_a", how="inner")
        .join(
            groups.rename({"set_id": "set_b", "_t": "_t_b", "_o": "_o_b"}),
            on=["set_b", "level"],
            how="inner",
        )
        .filter((pl.col("_t") != pl.col("_t_b")) | (pl.col("_o") != pl.col("_o_b")))
        .sort(["jaccard", "p_key"], descending=[True, False])
        .group_by(gkeys, maintain_order=True)
        .agg(
            pl.all().exclude("set_b", "_t_b", "_o_b", "_count").first(),
            pl.col("_count").sum().alias("_others"),
            (pl.col("_o") != pl.col("_o_b")).any().alias("_cross_org"),
        )
    )
    hits = members.join(partners, on=gkeys, how="inner")
    more = (
        pl.when(pl.col("_others") > 1)
        .then(pl.format(" and {} more similar items", pl.col("_others") - 1))
        .otherwise(pl.lit(""))
    )
    return hits.select(
        *_ITEM,
        pl.format(
            "{} {} looks like {} '{}' of team {} ({}) (title similarity {}){}: agree who does it "
            "and link the items",
            "_type",
            _label(),
            _txt("p_key"),
            _short("p_title"),
            _txt("p_team"),
            _txt("p_organisation"),
            pl.col("jaccard").round(2).cast(pl.String),
            more,
        ).alias("message"),
        pl.max_horizontal("created", "p_created").alias("since"),
        pl.when(pl.col("_cross_org"))
        .then(pl.lit("PMO"))
        .otherwise(pl.lit("Chief PO"))
        .alias("owner_role"),
    )


@_rule(
    "unassigned_in_active_sprint",
    "Sprint work without an assignee",
    "Sprint transparency: work in progress without a name cannot be asked about; a sprint "
    "backlog whose items nobody picks up is not a plan.",
    "warning",
    "Team PO",
)
def _unassigned(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    active = (
        ctx.sprints.filter(pl.col("_state") == "active")
        .select("sprint_id", pl.col("name").alias("_sprint"), pl.col("start").alias("_start"))
        .unique("sprint_id", keep="first", maintain_order=True)  # once, whichever teams it serves
    )
    items = ctx.items.filter(
        pl.col("_open")
        & pl.col("level").is_in(list(t["levels"]))
        & pl.col("status_category").is_in(list(t["categories"]))
        & (pl.col("assignee").is_null() | (pl.col("assignee").str.strip_chars() == ""))
    ).join(active, on="sprint_id", how="inner")
    return items.select(
        *_ITEM,
        pl.format(
            "{} {} is {} in active sprint '{}' without an assignee: someone should pick it up",
            "_type",
            _label(),
            pl.col("status_category").str.replace("_", " "),
            _txt("_sprint"),
        ).alias("message"),
        pl.col("_start").alias("since"),
        pl.when(pl.col("status_category") == "in_progress")
        .then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
        .alias("severity"),
    )


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RuleSetting:
    enabled: bool
    thresholds: dict[str, Any]


@dataclass(frozen=True)
class ResolvedRule:
    rule: Rule
    base: RuleSetting
    organisations: dict[str, RuleSetting] = field(default_factory=dict)


Rules = RulesSettings | Mapping[str, Any] | None
CustomRules = Sequence[CustomRule | Mapping[str, Any]]


def resolve_rules(config: Rules, custom_ids: Iterable[str] = ()) -> dict[str, ResolvedRule]:
    """The settings in force, per rule and organisation, from the typed ``Settings.rules``
    (checked when the config loads). A plain mapping (tests, benchmarks) is parsed first, with
    the same ``ConfigError`` the config load gives. Custom rule ids take ``enabled`` only."""
    customs = sorted(set(custom_ids))
    rules = (
        config if isinstance(config, RulesSettings) else RulesSettings.from_mapping(config, customs)
    )
    resolved: dict[str, ResolvedRule] = {}
    for rule in [*RULES.values(), *(_custom_stub(i) for i in customs)]:
        settings: RuleSettings = rules.rule(rule.id)
        base = RuleSetting(settings.enabled, settings.thresholds())
        per_org = {
            str(org): RuleSetting(*settings.overridden(override))
            for org, override in settings.organisations.items()
        }
        resolved[rule.id] = ResolvedRule(rule, base, per_org)
    return resolved


def _custom_stub(rule_id: str) -> Rule:
    """A custom rule as the settings see it: no thresholds, only ``enabled``."""
    return Rule(rule_id, rule_id, "", "warning", "PMO", {}, lambda ctx, t: _empty_hits())


CATALOGUE_SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "title": pl.String,
    "rationale": pl.String,
    "severity": pl.String,
    "owner_role": pl.String,
    "custom": pl.Boolean,
    "enabled": pl.Boolean,
    "thresholds": pl.String,  # JSON of the thresholds in force
    "organisations": pl.String,  # JSON: per organisation, the settings that differ
    "sql": pl.String,  # custom rules only
}


def rule_catalogue(config: Rules = None, custom_rules: CustomRules = ()) -> pl.DataFrame:
    """The rules (built-in, then custom) with the settings in force (``CATALOGUE_SCHEMA``)."""
    customs = {c.id: c for c in CustomRule.list_from(custom_rules)}
    rows = []
    for rule_id, r in resolve_rules(config, customs).items():
        custom = customs.get(rule_id)
        orgs: dict[str, dict[str, Any]] = {}
        for org, setting in r.organisations.items():
            diff = {k: v for k, v in setting.thresholds.items() if r.base.thresholds.get(k) != v}
            if setting.enabled != r.base.enabled:
                diff["enabled"] = setting.enabled
            if diff:
                orgs[org] = diff
        rows.append(
            {
                "id": rule_id,
                "title": custom.title if custom else r.rule.title,
                "rationale": custom.rationale if custom else r.rule.rationale,
                "severity": custom.severity if custom else r.rule.severity,
                "owner_role": custom.owner_role if custom else r.rule.owner_role,
                "custom": custom is not None,
                "enabled": r.base.enabled,
                "thresholds": json.dumps(r.base.thresholds, sort_keys=True),
                "organisations": json.dumps(orgs, sort_keys=True),
                "sql": custom.sql if custom else None,
            }
        )
    return pl.DataFrame(rows, schema=CATALOGUE_SCHEMA)


# --------------------------------------------------------------------------- the engine


def _key_expr() -> pl.Expr:
    """Identity of a finding within its rule: the item, or for team-level findings the team."""
    return pl.coalesce(
        pl.col("item_id"),
        pl.format("team:{}/{}", _txt("organisation", ""), _txt("team", "")),
    )


def _finalise(rule_id: str, severity: str, owner_role: str, hits: pl.DataFrame) -> pl.DataFrame:
    """Hits -> FINDINGS_SCHEMA: the rule id, its defaults where a hit has no severity/owner."""
    cols = []
    for name, dtype in FINDINGS_SCHEMA.items():
        if name == "rule":
            cols.append(pl.lit(rule_id, pl.String).alias("rule"))
        elif name in ("severity", "owner_role"):
            default = severity if name == "severity" else owner_role
            allowed = SEVERITIES if name == "severity" else OWNER_ROLES
            got = pl.col(name).cast(pl.String) if name in hits.columns else pl.lit(None, pl.String)
            cols.append(
                pl.when(got.is_in(list(allowed))).then(got).otherwise(pl.lit(default)).alias(name)
            )
        elif name in hits.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype).alias(name))
    return hits.select(cols)


def _by_organisation(
    hits: pl.DataFrame, include: Sequence[str] | None, exclude: Sequence[str]
) -> pl.DataFrame:
    if include is not None:
        return hits.filter(pl.col("organisation").is_in(list(include)).fill_null(False))
    if exclude:
        return hits.filter(~pl.col("organisation").is_in(list(exclude)).fill_null(False))
    return hits


def run_rule(resolved: ResolvedRule, ctx: RuleContext) -> pl.DataFrame:
    """One rule with its settings: one run per distinct set of thresholds in force, each keeping
    the findings of the organisations those thresholds apply to."""
    rule, base = resolved.rule, resolved.base
    differing = {o: s for o, s in resolved.organisations.items() if s != base}
    runs: list[tuple[dict[str, Any], list[str] | None, list[str]]] = []
    if base.enabled:
        runs.append((base.thresholds, None, sorted(differing)))
    grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for org, setting in differing.items():
        if setting.enabled:
            sig = json.dumps(setting.thresholds, sort_keys=True, default=str)
            grouped.setdefault(sig, (setting.thresholds, []))[1].append(org)
    runs += [(thresholds, orgs, []) for thresholds, orgs in grouped.values()]
    parts = [
        _by_organisation(
            _finalise(rule.id, rule.severity, rule.owner_role, rule.fn(ctx, thresholds)),
            include,
            exclude,
        )
        for thresholds, include, exclude in runs
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=FINDINGS_SCHEMA)


def _severity_rank() -> pl.Expr:
    return pl.col("severity").replace_strict(
        {s: i for i, s in enumerate(SEVERITIES)}, default=-1, return_dtype=pl.Int8
    )


def order_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """One finding per (rule, item or team), most severe first, then rule, organisation, team."""
    return (
        findings.with_columns(_severity_rank().alias("_rank"), _key_expr().alias("_k"))
        .sort(
            ["_rank", "rule", "organisation", "team", "key", "_k"],
            descending=[True, False, False, False, False, False],
            nulls_last=True,
            maintain_order=True,
        )
        .unique(["rule", "_k"], keep="first", maintain_order=True)
        .drop("_rank", "_k")
    )


def evaluate(
    frames: Mapping[str, pl.DataFrame],
    edges: pl.DataFrame | None,
    as_of: datetime,
    config: Rules = None,
    custom_rules: CustomRules = (),
) -> pl.DataFrame:
    """Run every enabled rule, built-in and custom; findings (``FINDINGS_SCHEMA``), most severe
    first.

    ``frames``: the canonical frames (work_items, sprints, status_changes, teams, ...);
    ``edges``: the dependency_edges frame; ``config``: ``Settings.rules``; ``custom_rules``:
    ``Settings.custom_rules``.
    """
    customs = CustomRule.list_from(custom_rules)
    resolved = resolve_rules(config, [r.id for r in customs])
    ctx = RuleContext(frames, edges, as_of)
    parts = [run_rule(r, ctx) for r in resolved.values() if r.rule.id in RULES]
    if customs:
        parts.append(_run_custom_rules(customs, frames, resolved))
    return order_findings(pl.concat(parts))


# --------------------------------------------------------------------------- custom SQL rules


def run_custom_rules(
    custom_rules: CustomRules,
    frames: Mapping[str, pl.DataFrame],
    config: Rules = None,
) -> pl.DataFrame:
    """Validate, then run the SQL rules over ``frames``; findings like ``evaluate``'s.

    ``rule`` is always the custom rule's id; a severity or owner_role that is null or not one
    of the allowed values takes the rule's. ``config`` (``Settings.rules``) may switch a custom
    rule off, globally or per organisation. A rule that fails at run time (a cast or division
    error in the data) yields one critical PMO finding saying so, instead of stopping the sync's
    analyses.
    """
    customs = CustomRule.list_from(custom_rules)
    return _run_custom_rules(customs, frames, resolve_rules(config, [r.id for r in customs]))


def _run_custom_rules(
    customs: Sequence[CustomRule],
    frames: Mapping[str, pl.DataFrame],
    resolved: Mapping[str, ResolvedRule],
) -> pl.DataFrame:
    parts = [pl.DataFrame(schema=FINDINGS_SCHEMA)]
    with custom_connection(frames) as con:
        for rule in customs:
            rule_id = rule.id
            setting = resolved[rule_id]
            off = sorted(o for o, s in setting.organisations.items() if not s.enabled)
            on = sorted(o for o, s in setting.organisations.items() if s.enabled)
            if not setting.base.enabled and not on:
                continue
            sql = clean_sql(rule.sql)
            cols = ", ".join(f'"{c}"' for c in FINDINGS_COLUMNS)
            try:
                hits = con.sql(f"SELECT {cols} FROM (\n{sql}\n) AS custom_rule").pl()
            except duckdb.Error as exc:
                parts.append(_failed(rule_id, str(exc)))
                continue
            if isinstance(hits["since"].dtype, pl.Datetime | pl.Date):
                since = hits["since"].cast(pl.Datetime("us"))  # naive: already UTC
                if isinstance(hits["since"].dtype, pl.Datetime) and hits["since"].dtype.time_zone:
                    since = hits["since"].dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                hits = hits.with_columns(since.dt.replace_time_zone("UTC").alias("since"))
            found = _finalise(rule_id, rule.severity, rule.owner_role, hits)
            include = None if setting.base.enabled else on
            parts.append(_by_organisation(found, include, off if setting.base.enabled else []))
    return order_findings(pl.concat(parts))


def _failed(rule_id: str, error: str) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "rule": rule_id,
                "severity": "critical",
                "owner_role": "PMO",
                "message": f"Custom rule {rule_id} failed on this data: {error.splitlines()[0]} "
                "- fix its SQL in pmolens.toml",
            }
        ],
        schema=FINDINGS_SCHEMA,
    )


# --------------------------------------------------------------------------- lifecycle

STATUSES = ("new", "open", "resolved")
#: The stored findings table (result ``findings``): findings plus their lifecycle.
FINDINGS_STATE_SCHEMA: dict[str, Any] = {
    **FINDINGS_SCHEMA,
    "first_seen": UTC_TS,  # the first evaluation that found it (since it was last resolved)
    "last_seen": UTC_TS,
    "resolved_at": UTC_TS,  # the first evaluation that no longer found it
    "status": pl.String,  # new (first seen in this evaluation) / open / resolved
    "open_days": pl.Float64,  # from since (or first_seen) to resolved_at (or as_of)
}
_STATE_KEPT = ("first_seen", "last_seen", "resolved_at")


def _conform(frame: pl.DataFrame | None, schema: Mapping[str, Any]) -> pl.DataFrame:
    if frame is None or frame.width == 0:
        return pl.DataFrame(schema=dict(schema))
    return frame.select(
        [
            pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        ]
    )


def update_findings(
    previous: pl.DataFrame | None,
    current: pl.DataFrame,
    as_of: datetime,
    keep_resolved_days: float = 90.0,
) -> pl.DataFrame:
    """The findings table after one evaluation (``FINDINGS_STATE_SCHEMA``), keyed by (rule,
    item_id), or (rule, organisation, team) for team-level findings.

    New findings get first_seen = last_seen = as_of; still-present ones keep first_seen and move
    last_seen to as_of (their text is refreshed); open ones that are gone get resolved_at = as_of;
    resolved ones stay (unchanged) for ``keep_resolved_days`` after resolved_at, then drop; a
    resolved one that reappears starts again as new. Applying the same evaluation twice changes
    nothing but last_seen.
    """
    now = utc(as_of)
    ts = _lit_ts(now)
    prev = _conform(previous, {**FINDINGS_SCHEMA, **{c: UTC_TS for c in _STATE_KEPT}})
    prev = prev.with_columns(_key_expr().alias("_k"))
    cur = _conform(current, FINDINGS_SCHEMA).with_columns(_key_expr().alias("_k"))
    cur = cur.unique(["rule", "_k"], keep="first", maintain_order=True)
    open_prev = prev.filter(pl.col("resolved_at").is_null())
    keys = ["rule", "_k"]
    seen = cur.join(open_prev.select(*keys, "first_seen"), on=keys, how="left").with_columns(
        pl.coalesce("first_seen", ts).alias("first_seen"),
        ts.alias("last_seen"),
        pl.lit(None, UTC_TS).alias("resolved_at"),
    )
    gone = open_prev.join(cur, on=keys, how="anti").with_columns(ts.alias("resolved_at"))
    kept = (
        prev.filter(pl.col("resolved_at").is_not_null())
        .join(cur, on=keys, how="anti")
        .filter(pl.col("resolved_at") >= _lit_ts(now - timedelta(days=keep_resolved_days)))
    )
    cols = [*FINDINGS_SCHEMA, *_STATE_KEPT]
    state = pl.concat([frame.select(cols) for frame in (seen, gone, kept)])
    status = (
        pl.when(pl.col("resolved_at").is_not_null())
        .then(pl.lit("resolved"))
        .when(pl.col("first_seen") == ts)
        .then(pl.lit("new"))
        .otherwise(pl.lit("open"))
    )
    start = pl.min_horizontal("since", "first_seen")
    return (
        state.with_columns(
            status.alias("status"),
            _days(start, pl.coalesce("resolved_at", ts)).clip(0.0, None).alias("open_days"),
            _severity_rank().alias("_rank"),
            pl.col("resolved_at").is_not_null().alias("_resolved"),
        )
        .sort(
            ["_resolved", "_rank", "rule", "organisation", "team", "key", "item_id"],
            descending=[False, True, False, False, False, False, False],
            nulls_last=True,
        )
        .select(list(FINDINGS_STATE_SCHEMA))
    )


# --------------------------------------------------------------------------- scores

SCORE_KEYS: dict[str, list[str]] = {
    "team": ["organisation", "team"],
    "organisation": ["organisation"],
}


def alignment_scores(
    work_items: pl.DataFrame,
    findings: pl.DataFrame,
    by: Literal["team", "organisation"] = "team",
) -> pl.DataFrame:
    """[organisation, (team,) items, items_with_findings, weighted_penalty, score, findings].

    items: live items of the group that are open or carry an open finding; each item's penalty is
    the weight of its most severe open finding (info 0.25, warning 0.5, critical 1.0, none 0);
    weighted_penalty = sum of the penalties; score = 100 * (1 - weighted_penalty / items), so
    100 = no findings. An item counts for the group it belongs to in work_items. findings: the
    open findings whose team / organisation is the group, team-level ones (no item) included -
    those do not move the score, which is about items.
    """
    if by not in SCORE_KEYS:
        raise ValueError(f"by must be 'team' or 'organisation', got {by!r}")
    keys = SCORE_KEYS[by]
    items = work_items
    if "is_deleted" in items.columns:
        items = items.filter(~pl.col("is_deleted").fill_null(False))
    found = findings
    if "resolved_at" in found.columns:
        found = found.filter(pl.col("resolved_at").is_null())
    penalty = (
        found.filter(pl.col("item_id").is_not_null())
        .group_by("item_id")
        .agg(
            pl.col("severity")
            .replace_strict(SEVERITY_WEIGHTS, default=0.0, return_dtype=pl.Float64)
            .max()
            .alias("_w")
        )
    )
    counted = found.group_by(keys).agg(pl.len().cast(pl.Int64).alias("findings"))
    return (
        items.select("item_id", *keys, "status_category")
        .join(penalty, on="item_id", how="left")
        .filter((pl.col("status_category") != "done").fill_null(True) | pl.col("_w").is_not_null())
        .with_columns(pl.col("_w").fill_null(0.0))
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("items"),
            (pl.col("_w") > 0).sum().cast(pl.Int64).alias("items_with_findings"),
            pl.col("_w").sum().alias("weighted_penalty"),
        )
        .with_columns((100.0 * (1.0 - pl.col("weighted_penalty") / pl.col("items"))).alias("score"))
        .join(counted, on=keys, how="left", nulls_equal=True)
        .with_columns(pl.col("findings").fill_null(0))
        .sort(keys, nulls_last=True)
    )


def score_scope(by: Literal["team", "organisation"]) -> pl.Expr:
    """The ``scope`` under which a score row's trend is kept in metric_snapshots."""
    if by == "team":
        return pl.format("team:{}/{}", _txt("organisation", ""), _txt("team", ""))
    return pl.format("organisation:{}", _txt("organisation", ""))


def daily_trend(snapshots: pl.DataFrame, as_of: datetime, days: int) -> pl.DataFrame:
    """[scope, metric, day, value]: the last snapshot value per scope, metric and UTC day, over
    the ``days`` days up to as_of (syncs may run every few minutes; a trend is per day)."""
    start = _lit_ts(utc(as_of) - timedelta(days=days))
    return (
        snapshots.filter((pl.col("as_of") >= start) & (pl.col("as_of") <= _lit_ts(utc(as_of))))
        .with_columns(pl.col("as_of").dt.convert_time_zone("UTC").dt.date().alias("day"))
        .sort("as_of", "generation")
        .group_by("scope", "metric", "day", maintain_order=True)
        .agg(pl.col("value").last())
        .sort("scope", "metric", "day")
    )
