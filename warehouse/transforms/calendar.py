"""The organisations' calendars: which time zone cuts an item's days and ISO weeks.

Timestamps are stored in UTC; a team in Amsterdam that finishes an item at 00:30 local time
finished it *that* day, not the evening before. Every day or week a flow metric cuts (cycle time
in whole days, throughput per week, WIP and cumulative flow per day, work item age) is cut in the
zone of the item's organisation (``[[organisations]] time_zone``; UTC when not configured).

Pure: the calendar comes in as data (``Calendar``), ``as_of`` as an argument; nothing here reads
a clock. Definitions: docs/flow.md ("Days, weeks and time zones").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

UTC_ZONE = "UTC"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MON_TO_FRI = WEEKDAYS[:5]


@dataclass(frozen=True)
class Calendar:
    """Time zone and working days per organisation (organisation name -> value).

    Organisations not listed use ``default_zone`` / ``default_working_days``.
    """

    zones: Mapping[str, str] = field(default_factory=dict)
    working_days: Mapping[str, Sequence[str]] = field(default_factory=dict)
    default_zone: str = UTC_ZONE
    default_working_days: Sequence[str] = MON_TO_FRI

    def zone(self, organisation: str | None) -> str:
        return self.zones.get(organisation or "", self.default_zone)

    def zones_of(self, organisations: Iterable[str | None]) -> list[str]:
        """The distinct zones of these organisations, sorted."""
        return sorted({self.zone(o) for o in organisations})

    def is_utc(self) -> bool:
        return all(z == UTC_ZONE for z in (self.default_zone, *self.zones.values()))


UTC_CALENDAR = Calendar()


def _utc(expr: pl.Expr) -> pl.Expr:
    """A Datetime expression as UTC-aware (naive timestamps are UTC in the warehouse)."""
    return expr.dt.replace_time_zone(UTC_ZONE, ambiguous="raise").dt.convert_time_zone(UTC_ZONE)


def _zone_expr(calendar: Calendar, organisation: str) -> pl.Expr:
    """Each row's zone name from its organisation column."""
    return (
        pl.col(organisation)
        .replace_strict(dict(calendar.zones), default=calendar.default_zone, return_dtype=pl.String)
        .fill_null(calendar.default_zone)
    )


def local_date(
    column: str | pl.Expr,
    calendar: Calendar,
    zones: Sequence[str],
    organisation: str = "organisation",
) -> pl.Expr:
    """The calendar date of a UTC timestamp in the zone of the row's organisation.

    ``zones``: the zones that occur (``calendar.zones_of(frame[organisation])``); one branch per
    zone, so the cost is a few vectorised conversions, not one per row.
    """
    expr = pl.col(column) if isinstance(column, str) else column
    if all(z == UTC_ZONE for z in zones):
        return _utc(expr).dt.date()
    if len(zones) == 1:
        return _utc(expr).dt.convert_time_zone(zones[0]).dt.date()
    zone_of = _zone_expr(calendar, organisation)
    chain: Any = pl
    for z in zones:
        chain = chain.when(zone_of == z).then(_utc(expr).dt.convert_time_zone(z).dt.date())
    return chain.otherwise(pl.lit(None, pl.Date))


def date_in(moment: datetime, zone: str) -> date:
    """The calendar date of ``moment`` (naive = UTC) in ``zone``."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return pl.select(pl.lit(aware).dt.convert_time_zone(zone).dt.date()).item()


def today(as_of: datetime, zones: Sequence[str]) -> date:
    """``as_of``'s date in the zone furthest ahead of these zones (UTC when there are none).

    Day grids (WIP, cumulative flow, weeks) run to this date: a day that has not ended yet in a
    zone behind it shows the state at ``as_of``, which is what that day holds so far.
    """
    return max(date_in(as_of, z) for z in (zones or [UTC_ZONE]))


def monday(day: date) -> date:
    """The Monday that starts ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def monday_expr(day: str | pl.Expr) -> pl.Expr:
    """The Monday that starts the ISO week of a Date expression."""
    d = pl.col(day) if isinstance(day, str) else day
    return d - pl.duration(days=d.dt.weekday() - 1)


def whole_days(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """Vacanti's whole days between two dates: end date - start date + 1 (same day = 1)."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return ((e - s).dt.total_days() + 1).cast(pl.Int64)


def working_days(
    frame: pl.DataFrame,
    start: str,
    end: str,
    calendar: Calendar,
    organisation: str = "organisation",
) -> pl.Series:
    """Working days from the ``start`` date to the ``end`` date, both included (Int64; null when a
    date is null). Working days are the organisation's ``working_days`` (Monday to Friday unless
    configured); one numpy ``busday_count`` per distinct set of working days."""

    def weekmask(days: Sequence[str]) -> str:
        return "".join("1" if d in days else "0" for d in WEEKDAYS)

    default = weekmask(calendar.default_working_days)
    by_org = {o: weekmask(days) for o, days in calendar.working_days.items()}
    if organisation in frame.columns:
        masks = (
            frame[organisation]
            .replace_strict(by_org, default=default, return_dtype=pl.String)
            .fill_null(default)
            .to_numpy()
        )
    else:
        masks = np.full(frame.height, default, dtype=object)
    known = (frame[start].is_not_null() & frame[end].is_not_null()).to_numpy()
    starts = frame[start].fill_null(date(1970, 1, 1)).to_numpy().astype("datetime64[D]")
    ends = frame[end].fill_null(date(1970, 1, 1)).to_numpy().astype("datetime64[D]")
    out = np.zeros(frame.height, dtype=np.int64)
    for mask in sorted(set(masks.tolist())):
        rows = (masks == mask) & known
        if mask != "0" * 7 and rows.any():
            out[rows] = np.busday_count(starts[rows], ends[rows] + np.timedelta64(1, "D"), mask)
    return pl.select(
        pl.when(pl.lit(pl.Series(known))).then(pl.lit(pl.Series(out))).alias("working_days")
    ).to_series()
