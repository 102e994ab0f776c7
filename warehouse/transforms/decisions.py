"""What needs a decision today, and what changed since an earlier moment (docs/decisions.md).

Pure functions over the frames other analyses already make: the dependency edges (red lines:
``timing.is_red_line``, the one definition), the epic forecasts, the impediment backlog and the
findings. ``decisions`` gives one line per item per kind, ordered for a steering meeting; it
stores no prose: each line has a catalogue key (``detail_key``) and its parameters as JSON
(``detail_params``), so the report and the web app say the same sentence in Dutch or English
(``reports/decision_text.py``). ``changes_since`` compares the same frames now and as of an
earlier moment (new / solved findings, epics whose P85 moved more than a week, new and gone red
lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.settings_analytics import ImpedimentParams
from pmolens.warehouse.transforms.alignment.contract import key_expr
from pmolens.warehouse.transforms.calendar import UTC_CALENDAR, Calendar, working_days
from pmolens.warehouse.transforms.dependencies.contract import empty_edges
from pmolens.warehouse.transforms.dependencies.timing import dependency_conflicts

#: Decision kinds in the order a steering meeting takes them (``rank`` follows it).
KINDS = (
    "red_line",
    "epic_overdue",
    "epic_below_target_chance",
    "impediment_eat",
    "impediment_escalating",
    "cross_org_at_risk",
    "critical_finding",
)
CHANGE_KINDS = (
    "red_line_new",
    "epic_p85_moved",
    "finding_new",
    "finding_resolved",
    "red_line_gone",
)
#: Who acts, as the decisions list names them (docs/decisions.md, "Who acts").
ROLES = ("Team PO", "Chief PO", "SoS Master", "EAT", "PMO")
#: A finding's owner_role as the decisions list names it (the rules say "Executive Action Team").
_ROLE_OF_FINDING = {"Executive Action Team": "EAT"}

#: An epic is below its target chance under this share of trials on time.
TARGET_CHANCE = 0.5
#: "About to escalate": reaches the Executive Action Team's age threshold within this many of
#: its organisation's working days.
ESCALATION_MARGIN_DAYS = 2
#: A critical finding is "new" when first found within this many days (the two-week steering
#: window the report's alignment section also calls "new").
NEW_FINDING_DAYS = 14.0
#: An epic's P85 "moved" when it differs by more than this many days.
P85_MOVE_DAYS = 7
_SEVERITIES = ("info", "warning", "critical")

DECISIONS_SCHEMA: dict[str, Any] = {
    "kind": pl.String,
    "rank": pl.Int64,  # 1 = first on the list: kind (KINDS order), then impact within the kind
    "item_id": pl.String,  # what the line is about (red line: the waiting item)
    "key": pl.String,
    "url": pl.String,
    "title": pl.String,
    "epic_id": pl.String,  # the epic whose date is at stake
    "epic_key": pl.String,
    "team": pl.String,  # the acting side (red line: the waiting team)
    "organisation": pl.String,
    "other_item_id": pl.String,  # the other side (red line: the blocker; epic: its driver)
    "other_key": pl.String,
    "other_url": pl.String,
    "other_team": pl.String,
    "other_organisation": pl.String,
    "owner_role": pl.String,  # one of ROLES
    "since": UTC_TS,
    "due": pl.Date,
    "p_on_time": pl.Float64,
    "p85": pl.Date,
    "target_date": pl.Date,
    "slip_days": pl.Int64,
    "detail_key": pl.String,  # catalogue key of the sentence (reports/decision_text.py)
    "detail_params": pl.String,  # JSON object: the sentence's parameters
}
_SIDES = ("item_id", "key", "url", "title", "team", "organisation")
_OTHER = ("other_item_id", "other_key", "other_url", "other_team", "other_organisation")

CHANGES_SCHEMA: dict[str, Any] = {
    "kind": pl.String,
    "rank": pl.Int64,
    "since": UTC_TS,  # the earlier moment compared with
    "at": UTC_TS,  # when it happened, when known (a finding's first_seen / resolved_at)
    "item_id": pl.String,
    "key": pl.String,
    "url": pl.String,
    "title": pl.String,
    "epic_id": pl.String,
    "epic_key": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "other_item_id": pl.String,
    "other_key": pl.String,
    "other_url": pl.String,
    "other_team": pl.String,
    "other_organisation": pl.String,
    "owner_role": pl.String,
    "severity": pl.String,
    "old_p85": pl.Date,
    "new_p85": pl.Date,
    "delta_days": pl.Int64,
    "detail_key": pl.String,
    "detail_params": pl.String,
}


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return moment.astimezone(UTC)


def _label(key: str | pl.Expr, fallback: str | pl.Expr | None = None) -> pl.Expr:
    """A parameter the sentence translates: {"label": catalogue key, "text": fallback}."""
    k = pl.lit(key) if isinstance(key, str) else key
    text = pl.lit(None, pl.String) if fallback is None else fallback
    if isinstance(text, str):
        text = pl.lit(text)
    return pl.struct(k.alias("label"), text.alias("text"))


def _params(**fields: pl.Expr) -> pl.Expr:
    """The sentence's parameters as one JSON object per row."""
    return pl.struct(*[e.alias(n) for n, e in fields.items()]).struct.json_encode()


def _finish(frame: pl.DataFrame, kind: str, schema: Mapping[str, Any]) -> pl.DataFrame:
    """``frame`` in ``schema``'s columns (missing ones null), tagged with its kind."""
    return frame.with_columns(pl.lit(kind).alias("kind")).select(
        [
            pl.col(c).cast(t) if c in frame.columns or c == "kind" else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        ]
    )


def _ranked(
    parts: list[pl.DataFrame], kinds: tuple[str, ...], schema: dict[str, Any]
) -> pl.DataFrame:
    """The parts (each already in its kind's order) in ``kinds`` order, ``rank`` 1..n."""
    if not parts:
        return pl.DataFrame(schema=schema)
    order = {k: i for i, k in enumerate(kinds)}
    frames = [p.with_row_index("_i") for p in parts]
    return (
        pl.concat(frames)
        .with_columns(pl.col("kind").replace_strict(order, return_dtype=pl.Int32).alias("_k"))
        .sort("_k", "_i", maintain_order=True)
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"))
        .select(list(schema))
    )


# ------------------------------------------------------------------------------ decisions


def _edge_sides() -> list[pl.Expr]:
    """A dependency line's two sides: the waiting item is the line's item, the blocker its other
    side (decisions and changes name them alike)."""
    mine = {"id": "item_id", "key": "key", "url": "url", "title": "title", "epic": "epic_id",
            "epic_key": "epic_key", "team": "team", "org": "organisation"}  # fmt: skip
    other = {"id": "other_item_id", "key": "other_key", "url": "other_url",
             "team": "other_team", "org": "other_organisation"}  # fmt: skip
    return [pl.col(f"dependent_{c}").alias(a) for c, a in mine.items()] + [
        pl.col(f"blocker_{c}").alias(a) for c, a in other.items()
    ]


def _dependency_owner() -> pl.Expr:
    """Who acts on a red line: the Chief PO between organisations, else the SoS Master."""
    return (
        pl.when(pl.col("cross_org").fill_null(False))
        .then(pl.lit("Chief PO"))
        .otherwise(pl.lit("SoS Master"))
    )


def _red_lines(edges: pl.DataFrame) -> pl.DataFrame:
    """The red lines (``dependency_conflicts``, worst first), one per (blocker, waiting item)."""
    return dependency_conflicts(edges).unique(
        ["blocker_id", "dependent_id"], keep="first", maintain_order=True
    )


def _moving(red: pl.DataFrame, epics: pl.DataFrame) -> pl.DataFrame:
    """Per red line whether it moves an epic's date (docs/decisions.md, "Red lines"): a
    conflict, or its waiting item's epic is forecast later because of its blockers
    (``dependency_delay_days_p85`` > 0) and this line's blocker (its epic, else the item itself:
    the forecast's node) is one of them. Adds the waiting epic's forecast columns."""
    forecast = epics.select(
        pl.col("epic_id").alias("dependent_epic"),
        "p_on_time",
        "p85",
        "target_date",
        pl.col("dependency_delay_days_p85").alias("_delay"),
        pl.col("blockers").alias("_blockers"),
    ).unique("dependent_epic", keep="first")
    node = pl.coalesce("blocker_epic", "blocker_id")
    return red.join(forecast, on="dependent_epic", how="left", maintain_order="left").with_columns(
        (
            (pl.col("timing") == "conflict")
            | (
                (pl.col("_delay") > 0).fill_null(False)
                & pl.col("_blockers").list.contains(node).fill_null(False)
            )
        ).alias("_moves")
    )


def _dependency_lines(red: pl.DataFrame, as_of: datetime, kind: str) -> pl.DataFrame:
    now = pl.lit(as_of, dtype=UTC_TS)
    timing = pl.col("timing")
    slip: pl.Expr
    owner: pl.Expr
    if kind == "red_line":
        detail = pl.format("decision_red_line_{}", timing)
        slip = pl.when(timing == "conflict").then("slip_days").otherwise("_delay")
        owner = _dependency_owner()
    else:
        detail = pl.format("decision_cross_org_{}", timing)
        slip = pl.col("slip_days")
        owner = pl.lit("Chief PO")
    frame = red.select(
        *_edge_sides(),
        owner.alias("owner_role"),
        (now - pl.duration(microseconds=(pl.col("age_days") * 86_400_000_000).cast(pl.Int64)))
        .cast(UTC_TS)
        .dt.round("1ms")  # age_days is a float: no sub-millisecond noise
        .alias("since"),
        pl.col("dependent_planned_end").alias("due"),
        "p_on_time",
        "p85",
        "target_date",
        slip.cast(pl.Int64).alias("slip_days"),
        detail.alias("detail_key"),
        _params(
            key=pl.col("dependent_key"),
            team=pl.col("dependent_team"),
            organisation=pl.col("dependent_org"),
            other_key=pl.col("blocker_key"),
            other_team=pl.col("blocker_team"),
            other_organisation=pl.col("blocker_org"),
            epic_key=pl.col("dependent_epic_key"),
            slip_days=pl.col("slip_days"),
            delay_days=pl.col("_delay"),
            due=pl.col("dependent_planned_end"),
        ).alias("detail_params"),
    )
    return _finish(frame, kind, DECISIONS_SCHEMA)


def _drivers(epics: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """The team, organisation and link of each forecast node that can drive an epic's date:
    a forecast epic, else a blocking item (the forecast's one-item nodes)."""
    as_epic = epics.select(
        pl.col("epic_id").alias("driven_by"),
        pl.col("url").alias("_d_url"),
        pl.col("team").alias("_d_team"),
        pl.col("organisation").alias("_d_org"),
    )
    drivers = epics["driven_by"].drop_nulls().unique().implode()
    as_item = edges.filter(pl.col("blocker_id").is_in(drivers)).select(
        pl.col("blocker_id").alias("driven_by"),
        pl.col("blocker_url").alias("_d_url"),
        pl.col("blocker_team").alias("_d_team"),
        pl.col("blocker_org").alias("_d_org"),
    )
    both = pl.concat([as_epic, as_item], how="vertical_relaxed")
    return both.unique("driven_by", keep="first", maintain_order=True)


def _epic_lines(
    epics: pl.DataFrame,
    drivers: pl.DataFrame,
    now: datetime,
    history: pl.DataFrame | None,
) -> list[pl.DataFrame]:
    """Overdue epics (target date before today), then the others below ``TARGET_CHANCE``."""
    day = pl.lit(now.date(), dtype=pl.Date)
    late = (pl.col("p85") - pl.col("target_date")).dt.total_days()
    driven = (pl.col("dependency_delay_days_p85") > 0).fill_null(False) & pl.col(
        "driven_by"
    ).is_not_null()
    base = epics.join(drivers, on="driven_by", how="left", maintain_order="left").with_columns(
        late.cast(pl.Int64).alias("slip_days"),
        pl.when(driven).then(pl.col("driven_by")).alias("other_item_id"),
        pl.when(driven).then(pl.col("driven_by_key")).alias("other_key"),
        pl.when(driven).then(pl.col("_d_url")).alias("other_url"),
        pl.when(driven).then(pl.col("_d_team")).alias("other_team"),
        pl.when(driven).then(pl.col("_d_org")).alias("other_organisation"),
        pl.when(driven).then(pl.col("dependency_delay_days_p85")).alias("_delay"),
        pl.lit("Chief PO").alias("owner_role"),
        pl.col("epic_id").alias("item_id"),
        pl.col("key").alias("epic_key"),
        pl.col("target_date").alias("due"),
    )
    p85 = (
        pl.when(pl.col("p85").is_not_null())
        .then(_label(pl.lit(None, pl.String), pl.col("p85").cast(pl.String)))
        .otherwise(_label("decision_beyond_horizon"))
    )
    overdue = (
        base.filter((pl.col("target_date") < day).fill_null(False))
        .sort("target_date", "key", nulls_last=True)
        .with_columns(
            (pl.col("target_date").cast(UTC_TS) + pl.duration(days=1)).alias("since"),
            pl.when(pl.col("other_key").is_not_null())
            .then(pl.lit("decision_epic_overdue_driven"))
            .otherwise(pl.lit("decision_epic_overdue"))
            .alias("detail_key"),
            _params(
                key=pl.col("key"),
                target_date=pl.col("target_date"),
                days_overdue=(day - pl.col("target_date")).dt.total_days(),
                p85=p85,
                other_key=pl.col("other_key"),
                delay_days=pl.col("_delay"),
            ).alias("detail_params"),
        )
    )
    below = base.filter(
        (pl.col("target_date") >= day).fill_null(False)
        & (pl.col("p_on_time") < TARGET_CHANCE).fill_null(False)
    )
    below = below.join(_below_since(history), on="epic_id", how="left").with_columns(
        pl.coalesce("_since", pl.lit(now, dtype=UTC_TS)).alias("since")
    )
    below = below.sort("p_on_time", "target_date", "key", nulls_last=True).with_columns(
        pl.when(pl.col("other_key").is_not_null())
        .then(pl.lit("decision_epic_below_target_chance_driven"))
        .otherwise(pl.lit("decision_epic_below_target_chance"))
        .alias("detail_key"),
        _params(
            key=pl.col("key"),
            p_on_time_pct=(pl.col("p_on_time") * 100).round(0).cast(pl.Int64),
            target_date=pl.col("target_date"),
            p85=p85,
            other_key=pl.col("other_key"),
            delay_days=pl.col("_delay"),
        ).alias("detail_params"),
    )
    return [
        _finish(overdue, "epic_overdue", DECISIONS_SCHEMA),
        _finish(below, "epic_below_target_chance", DECISIONS_SCHEMA),
    ]


def _below_since(history: pl.DataFrame | None) -> pl.DataFrame:
    """Per epic the first kept sync of its current spell below ``TARGET_CHANCE`` (epic_id,
    _since); ``history``: [epic_id, as_of, p_on_time] of the earlier syncs (metric_snapshots)."""
    empty = pl.DataFrame(schema={"epic_id": pl.String, "_since": UTC_TS})
    if history is None or history.height == 0:
        return empty
    h = history.select(
        pl.col("epic_id").cast(pl.String),
        pl.col("as_of").cast(UTC_TS),
        pl.col("p_on_time").cast(pl.Float64),
    ).drop_nulls(["epic_id", "as_of"])
    ok = pl.col("p_on_time") >= TARGET_CHANCE
    last_ok = (
        h.filter(ok.fill_null(False)).group_by("epic_id").agg(pl.col("as_of").max().alias("_ok"))
    )
    return (
        h.join(last_ok, on="epic_id", how="left")
        .filter(
            (pl.col("p_on_time") < TARGET_CHANCE).fill_null(False)
            & (pl.col("_ok").is_null() | (pl.col("as_of") > pl.col("_ok")))
        )
        .group_by("epic_id")
        .agg(pl.col("as_of").min().alias("_since"))
    )


def _impediment_lines(
    backlog: pl.DataFrame,
    p: ImpedimentParams,
    today: date,
    calendar: Calendar,
    margin: int,
) -> list[pl.DataFrame]:
    """At the Executive Action Team (level ``eat``), then those at the Scrum of Scrums that
    reach its age threshold within ``margin`` working days."""
    reason = _label(pl.format("imped_reason_{}", pl.col("reason")), pl.col("reason"))
    common = {
        "key": pl.col("key"),
        "age_days": pl.col("age_days").floor().cast(pl.Int64),
        "held_up_items": pl.col("held_up_items"),
        "weight": pl.col("weight").round(1),
        "reason": reason,
    }
    eat = backlog.filter(pl.col("level") == "eat").with_columns(
        pl.lit("EAT").alias("owner_role"),
        pl.when(pl.col("held_up_items") > 0)
        .then(pl.lit("decision_impediment_eat"))
        .otherwise(pl.lit("decision_impediment_eat_alone"))
        .alias("detail_key"),
        _params(**common).alias("detail_params"),
    )
    reach = (
        (pl.col("since") + pl.duration(microseconds=int(p.eat_age_days * 86_400_000_000)))
        .dt.date()
        .alias("due")
    )
    sos = backlog.filter((pl.col("level") == "sos") & pl.col("since").is_not_null()).with_columns(
        reach, pl.lit(today + timedelta(days=1)).alias("_tomorrow")
    )
    ahead = working_days(sos, "_tomorrow", "due", calendar)
    escalating = (
        sos.with_columns(ahead.alias("_ahead"))
        .filter((pl.col("_ahead") <= margin).fill_null(False))
        .sort(["due", "weight", "key"], descending=[False, True, False], nulls_last=True)
        .with_columns(
            pl.lit("SoS Master").alias("owner_role"),
            pl.lit("decision_impediment_escalating").alias("detail_key"),
            _params(
                **common, due=pl.col("due"), threshold_days=pl.lit(p.eat_age_days).round(1)
            ).alias("detail_params"),
        )
    )
    return [
        _finish(eat, "impediment_eat", DECISIONS_SCHEMA),
        _finish(escalating, "impediment_escalating", DECISIONS_SCHEMA),
    ]


def _rule_label() -> pl.Expr:
    return _label(pl.format("align_rule_{}", pl.col("rule")), pl.col("rule"))


def _owner(column: str = "owner_role") -> pl.Expr:
    role = pl.col(column).replace(_ROLE_OF_FINDING)
    return pl.when(role.is_in(list(ROLES))).then(role).otherwise(pl.lit("PMO"))


def _subject() -> pl.Expr:
    """What a finding is about: its item's key, else (team-level) team · organisation."""
    return pl.coalesce(
        pl.col("key"),
        pl.format("{} · {}", pl.col("team").fill_null("?"), pl.col("organisation").fill_null("?")),
    )


def _finding_lines(findings: pl.DataFrame, as_of: datetime, days: float) -> pl.DataFrame:
    window = pl.lit(as_of - timedelta(days=days), dtype=UTC_TS)
    new = findings.filter(
        (pl.col("status") != "resolved").fill_null(True)
        & (pl.col("severity") == "critical")
        & (pl.col("first_seen") >= window).fill_null(False)
    )
    frame = new.sort(["first_seen", "rule", "key"], nulls_last=True).with_columns(
        _owner().alias("owner_role"),
        pl.coalesce("since", "first_seen").alias("since"),
        pl.lit("decision_critical_finding").alias("detail_key"),
        _params(rule=_rule_label(), subject=_subject()).alias("detail_params"),
    )
    return _finish(frame, "critical_finding", DECISIONS_SCHEMA)


def decisions(
    edges: pl.DataFrame,
    forecast_epics: pl.DataFrame,
    impediments: pl.DataFrame,
    findings: pl.DataFrame,
    as_of: datetime,
    thresholds: ImpedimentParams | None = None,
    *,
    calendar: Calendar = UTC_CALENDAR,
    forecast_history: pl.DataFrame | None = None,
    escalation_margin_days: int = ESCALATION_MARGIN_DAYS,
    new_finding_days: float = NEW_FINDING_DAYS,
) -> pl.DataFrame:
    """What needs a decision today (``DECISIONS_SCHEMA``), one line per item per kind, in
    steering order (``KINDS``, then impact within the kind; docs/decisions.md).

    ``edges``: dependency_edges (or only its red lines); ``forecast_epics``: the forecast's
    ``EPIC_SCHEMA``; ``impediments``: the impediment backlog; ``findings``: the findings with
    their lifecycle. ``thresholds``: ``[analytics.impediments]`` (the escalation ladder);
    ``calendar``: the organisations' working days; ``forecast_history``: [epic_id, as_of,
    p_on_time] of earlier syncs, for since when an epic is below its target chance.
    """
    now = _utc(as_of)
    today = now.date()
    p = thresholds or ImpedimentParams()
    red = _moving(_red_lines(edges), forecast_epics)
    moving = red.filter(pl.col("_moves"))
    cross = red.filter(~pl.col("_moves") & pl.col("cross_org").fill_null(False))
    parts = [_dependency_lines(moving, now, "red_line")]
    parts += _epic_lines(forecast_epics, _drivers(forecast_epics, edges), now, forecast_history)
    parts += _impediment_lines(impediments, p, today, calendar, escalation_margin_days)
    parts.append(_dependency_lines(cross, now, "cross_org_at_risk"))
    listed = pl.concat([part.select("item_id") for part in parts])["item_id"].drop_nulls()
    found = _finding_lines(findings, now, new_finding_days)
    parts.append(found.filter(~pl.col("item_id").is_in(listed.implode()).fill_null(False)))
    return _ranked(parts, KINDS, DECISIONS_SCHEMA)


# --------------------------------------------------------------------------- what changed


def _open_findings(findings: pl.DataFrame | None) -> pl.DataFrame:
    if findings is None or findings.width == 0:
        return pl.DataFrame(schema={"rule": pl.String, "_k": pl.String})
    status = pl.col("status") if "status" in findings.columns else pl.lit("open")
    return findings.filter((status != "resolved").fill_null(True)).with_columns(
        key_expr().alias("_k")
    )


def _finding_changes(now: pl.DataFrame | None, then: pl.DataFrame | None) -> list[pl.DataFrame]:
    cur, old = _open_findings(now), _open_findings(then)
    keys = ["rule", "_k"]
    severity = pl.col("severity").replace_strict(
        {s: i for i, s in enumerate(_SEVERITIES)}, default=-1, return_dtype=pl.Int8
    )

    def lines(frame: pl.DataFrame, kind: str, at: pl.Expr) -> pl.DataFrame:
        if frame.height == 0:
            return pl.DataFrame(schema=CHANGES_SCHEMA)
        return _finish(
            frame.with_columns(severity.alias("_s"))
            .sort(
                ["_s", "rule", "key", "_k"], descending=[True, False, False, False], nulls_last=True
            )
            .with_columns(
                at.alias("at"),
                _owner().alias("owner_role"),
                pl.lit(f"change_{kind}").alias("detail_key"),
                _params(
                    rule=_rule_label(),
                    subject=_subject(),
                    severity=_label(pl.format("align_{}", pl.col("severity")), pl.col("severity")),
                ).alias("detail_params"),
            ),
            kind,
            CHANGES_SCHEMA,
        )

    new = cur.join(old.select(keys), on=keys, how="anti") if cur.height else cur
    gone = old.join(cur.select(keys), on=keys, how="anti") if old.height else old
    if gone.height and now is not None and "resolved_at" in now.columns:
        solved = now.with_columns(key_expr().alias("_k")).select(*keys, "resolved_at")
        solved = solved.filter(pl.col("resolved_at").is_not_null()).unique(keys, keep="first")
        gone = gone.drop("resolved_at", strict=False).join(solved, on=keys, how="left")
    else:
        gone = gone.with_columns(pl.lit(None, UTC_TS).alias("resolved_at"))
    first_seen = pl.col("first_seen") if "first_seen" in cur.columns else pl.lit(None, UTC_TS)
    return [
        lines(new, "finding_new", first_seen),
        lines(gone, "finding_resolved", pl.col("resolved_at")),
    ]


def _p85_changes(now: pl.DataFrame | None, then: pl.DataFrame | None) -> pl.DataFrame:
    if now is None or then is None or now.height == 0 or then.height == 0:
        return pl.DataFrame(schema=CHANGES_SCHEMA)
    old = then.select("epic_id", pl.col("p85").alias("old_p85")).unique("epic_id", keep="first")
    delta = (pl.col("new_p85") - pl.col("old_p85")).dt.total_days()
    moved = (
        now.rename({"p85": "new_p85"})
        .join(old, on="epic_id", how="inner")
        .with_columns(delta.cast(pl.Int64).alias("delta_days"))
        .filter((pl.col("delta_days").abs() > P85_MOVE_DAYS).fill_null(False))
        .with_columns(pl.col("delta_days").abs().alias("_size"))
        .sort(["_size", "key"], descending=[True, False])
        .with_columns(
            pl.col("epic_id").alias("item_id"),
            pl.col("epic_id").alias("epic_id"),
            pl.col("key").alias("epic_key"),
            pl.lit("Chief PO").alias("owner_role"),
            pl.when(pl.col("delta_days") > 0)
            .then(pl.lit("change_epic_p85_later"))
            .otherwise(pl.lit("change_epic_p85_earlier"))
            .alias("detail_key"),
            _params(
                key=pl.col("key"),
                days=pl.col("delta_days").abs(),
                old_p85=pl.col("old_p85"),
                new_p85=pl.col("new_p85"),
            ).alias("detail_params"),
        )
    )
    return _finish(moved, "epic_p85_moved", CHANGES_SCHEMA)


def _red_line_changes(now: pl.DataFrame | None, then: pl.DataFrame | None) -> list[pl.DataFrame]:
    def red(edges: pl.DataFrame | None) -> pl.DataFrame:
        return _red_lines(empty_edges() if edges is None or edges.width == 0 else edges)

    cur, old = red(now), red(then)
    keys = ["blocker_id", "dependent_id"]

    def lines(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
        return _finish(
            frame.select(
                *_edge_sides(),
                _dependency_owner().alias("owner_role"),
                pl.lit(f"change_{kind}").alias("detail_key"),
                _params(
                    key=pl.col("dependent_key"),
                    team=pl.col("dependent_team"),
                    other_key=pl.col("blocker_key"),
                    other_team=pl.col("blocker_team"),
                    timing=_label(
                        pl.format("decision_timing_{}", pl.col("timing")), pl.col("timing")
                    ),
                ).alias("detail_params"),
            ),
            kind,
            CHANGES_SCHEMA,
        )

    return [
        lines(cur.join(old.select(keys), on=keys, how="anti"), "red_line_new"),
        lines(old.join(cur.select(keys), on=keys, how="anti"), "red_line_gone"),
    ]


def changes_since(
    now: Mapping[str, pl.DataFrame], then: Mapping[str, pl.DataFrame], since: datetime
) -> pl.DataFrame:
    """What changed between ``then`` (the frames as of ``since``) and ``now``
    (``CHANGES_SCHEMA``), in ``CHANGE_KINDS`` order (docs/decisions.md, "What changed since").

    Each side maps analysis names to frames: ``findings`` (with ``status``), ``forecast_epics``
    and ``dependency_edges`` (or ``dependency_conflicts``); a name missing on either side
    contributes no changes of its kinds.

    - finding_new / finding_resolved: open findings (rule and item, or team) now and not then,
      and the other way round;
    - epic_p85_moved: epics forecast both times whose P85 moved more than ``P85_MOVE_DAYS``;
    - red_line_new / red_line_gone: red lines (``is_red_line``) per (blocker, waiting item)
      now and not then, and the other way round.
    """
    moment = _utc(since)

    def edges(side: Mapping[str, pl.DataFrame]) -> pl.DataFrame | None:
        return side.get("dependency_edges", side.get("dependency_conflicts"))

    parts: list[pl.DataFrame] = []
    now_edges, then_edges = edges(now), edges(then)
    if now_edges is not None and then_edges is not None:
        parts += _red_line_changes(now_edges, then_edges)
    parts.append(_p85_changes(now.get("forecast_epics"), then.get("forecast_epics")))
    if "findings" in now and "findings" in then:
        parts += _finding_changes(now["findings"], then["findings"])
    out = _ranked([p for p in parts if p.height], CHANGE_KINDS, CHANGES_SCHEMA)
    return out.with_columns(pl.lit(moment, dtype=UTC_TS).alias("since"))
