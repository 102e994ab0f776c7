"""Days and weeks cut in the organisation's time zone (docs/flow.md, "Days, weeks and time zones").

Organisation NL is in Europe/Amsterdam (UTC+1 in March 2026, before the switch on 29 March),
organisation UK is not configured (UTC). Hand-computed:

  X (NL) started 2 Mar 23:30 UTC = 3 Mar 00:30 NL, done 3 Mar 00:30 UTC = 3 Mar 01:30 NL
         -> one Amsterdam day: cycle 1 whole day (in UTC it would be 2 Mar .. 3 Mar = 2)
  Y (NL) started 2 Mar 22:30 UTC = 2 Mar 23:30 NL, done 3 Mar 00:30 UTC = 3 Mar 01:30 NL
         -> 2 whole days; exact 2 hours = 1/12 day
  Z (NL) started 2 Mar 09:00 UTC, done Sun 8 Mar 23:30 UTC = Mon 9 Mar 00:30 NL
         -> ISO week of 9 Mar in Amsterdam (of 2 Mar in UTC)
  U (UK) the same timestamps as Z, in UTC: week of 2 Mar
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from pmolens.warehouse.analyses.base import Inputs
from pmolens.warehouse.config import ConfigError, settings_from_dict
from pmolens.warehouse.transforms import flow as F
from pmolens.warehouse.transforms.calendar import UTC_CALENDAR, Calendar, date_in, today
from tests.factories import frame, work_items

NL = Calendar(zones={"NL": "Europe/Amsterdam"})
CATS = {"To Do": "todo", "In Progress": "in_progress", "Done": "done"}
CREATED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def move(item: str, at: datetime, old: str, new: str) -> dict[str, object]:
    return {
        "source": "s",
        "item_id": item,
        "change_id": f"{item}-{at.isoformat()}",
        "at": at,
        "field": "status",
        "from_status": old,
        "to_status": new,
        "from_category": CATS[old],
        "to_category": CATS[new],
    }


def item(item_id: str, org: str, category: str = "done") -> dict[str, object]:
    return {
        "item_id": item_id,
        "team": org,
        "organisation": org,
        "status_category": category,
        "created": CREATED,
    }


ITEMS = work_items(item("X", "NL"), item("Y", "NL"), item("Z", "NL"), item("U", "UK"))
HISTORY = frame(
    "status_changes",
    move("X", t(2, 23, 30), "To Do", "In Progress"),
    move("X", t(3, 0, 30), "In Progress", "Done"),
    move("Y", t(2, 22, 30), "To Do", "In Progress"),
    move("Y", t(3, 0, 30), "In Progress", "Done"),
    move("Z", t(2, 9), "To Do", "In Progress"),
    move("Z", t(8, 23, 30), "In Progress", "Done"),
    move("U", t(2, 9), "To Do", "In Progress"),
    move("U", t(8, 23, 30), "In Progress", "Done"),
)
AS_OF = t(11, 12)  # Wednesday 11 March, 13:00 in Amsterdam
P = F.FlowParams(window_days=14)


def cycles(calendar: Calendar) -> pl.DataFrame:
    data = F.prepare(ITEMS, HISTORY, AS_OF, calendar=calendar)
    return F.cycle_times(ITEMS, HISTORY, AS_OF, P, data=data)


def by_item(frame: pl.DataFrame, column: str) -> dict[str, object]:
    return dict(zip(frame["item_id"], frame[column], strict=True))


def test_whole_days_are_cut_in_the_organisations_zone():
    got = cycles(NL)
    assert by_item(got, "cycle_days") == {"X": 1, "Y": 2, "Z": 8, "U": 7}
    assert by_item(got, "done_date") == {
        "X": date(2026, 3, 3),
        "Y": date(2026, 3, 3),
        "Z": date(2026, 3, 9),  # Monday in Amsterdam
        "U": date(2026, 3, 8),  # still Sunday in UTC
    }
    # the exact value stays beside it: X one hour, Y two hours
    exact = by_item(got, "cycle_time_days")
    assert exact["X"] == pytest.approx(1 / 24) and exact["Y"] == pytest.approx(1 / 12)


def test_in_utc_the_same_item_spans_two_days():
    assert by_item(cycles(UTC_CALENDAR), "cycle_days") == {"X": 2, "Y": 2, "Z": 7, "U": 7}


def test_working_days_follow_the_organisation():
    mon_to_thu = Calendar(
        zones={"NL": "Europe/Amsterdam"}, working_days={"NL": ("mon", "tue", "wed", "thu")}
    )
    got = by_item(cycles(mon_to_thu), "cycle_working_days")
    # Z: Mon 2 .. Mon 9 Mar, Mon-Thu = 2, 3, 4, 5, 9 Mar; U (Mon-Fri): Mon 2 .. Sun 8 = 5
    assert got == {"X": 1, "Y": 2, "Z": 5, "U": 5}


def test_a_sunday_night_in_utc_is_monday_in_amsterdam():
    weekly = F.throughput(cycles(NL), AS_OF, params=P, calendar=NL)
    done = {(r["team"], r["week"]): r["items"] for r in weekly.iter_rows(named=True)}
    assert done[("NL", date(2026, 3, 2))] == 2  # X and Y
    assert done[("NL", date(2026, 3, 9))] == 1  # Z: Sunday 23:30 UTC = Monday 00:30
    assert done[("UK", date(2026, 3, 2))] == 1 and done[("UK", date(2026, 3, 9))] == 0
    current = weekly.filter(pl.col("week") == date(2026, 3, 9))["complete"].to_list()
    assert current == [False, False]


def test_the_partial_current_week_is_left_out_of_the_weekly_average():
    got = cycles(NL)
    cfd = F.cumulative_flow(
        ITEMS, HISTORY, AS_OF, params=P, data=F.prepare(ITEMS, HISTORY, AS_OF, calendar=NL)
    )
    wip = F.wip_daily(cfd)
    aging = F.aging_wip(
        ITEMS, HISTORY, got, AS_OF, P, data=F.prepare(ITEMS, HISTORY, AS_OF, calendar=NL)
    )
    summary = F.flow_summary(got, wip, aging, None, None, AS_OF, P, calendar=NL)
    per_week = dict(zip(summary["team"], summary["throughput_per_week"], strict=True))
    # 14 days = 2 complete weeks before the week of 9 Mar (23 Feb, 2 Mar): NL 2 items (X, Y; Z
    # finished in the current week), UK 1 (U)
    assert per_week == {"NL": 1.0, "UK": 0.5}
    assert dict(zip(summary["team"], summary["items_done"], strict=True)) == {"NL": 3, "UK": 1}


def test_wip_and_aging_use_the_local_day():
    items = work_items(item("W", "NL", "in_progress"))
    history = frame("status_changes", move("W", t(2, 23, 30), "To Do", "In Progress"))
    as_of = t(3, 12)
    for calendar, wip_on_2_march, age in ((NL, 0, 1), (UTC_CALENDAR, 1, 2)):
        data = F.prepare(items, history, as_of, calendar=calendar)
        cfd = F.cumulative_flow(items, history, as_of, start=date(2026, 3, 2), data=data)
        assert F.wip_daily(cfd)["wip"].to_list() == [wip_on_2_march, 1]  # 2 and 3 March
        aging = F.aging_wip(items, history, cycles(calendar).head(0), as_of, P, data=data)
        assert aging["wip_age_days"].to_list() == [age]  # 3 Mar - start date + 1


def test_today_is_the_date_in_the_zone_furthest_ahead():
    sunday_night = t(8, 23, 30)
    assert date_in(sunday_night, "Europe/Amsterdam") == date(2026, 3, 9)
    assert today(sunday_night, ["UTC"]) == date(2026, 3, 8)
    assert today(sunday_night, ["Europe/Amsterdam", "UTC"]) == date(2026, 3, 9)


def test_config_time_zone_and_working_days():
    settings = settings_from_dict(
        {
            "organisations": [
                {"name": "NL", "time_zone": "Europe/Amsterdam", "working_days": ["Mon", "tue"]},
                {"name": "UK"},
            ]
        }
    )
    calendar = Inputs(frames={}, settings=settings, as_of=AS_OF).calendar
    assert calendar.zone("NL") == "Europe/Amsterdam" and calendar.zone("UK") == "UTC"
    assert calendar.working_days["NL"] == ("mon", "tue")
    assert calendar.working_days["UK"] == ("mon", "tue", "wed", "thu", "fri")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"time_zone": "Europe/Amsterdm"},
            r"organisations\[0\] \(NL\)\.time_zone: 'Europe/Amsterdm'",
        ),
        (
            {"working_days": ["mon", "funday"]},
            r"organisations\[0\] \(NL\)\.working_days: \['funday'\]",
        ),
    ],
)
def test_config_refuses_an_unknown_zone_or_day(entry, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_dict({"organisations": [{"name": "NL", **entry}]})
