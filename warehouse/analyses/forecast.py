"""Monte Carlo forecasts: when open epics and initiatives land (dependency-aware) and how many
items each team finishes by a date; ``what_if`` re-forecasts one epic under a change (pin a
blocker's date, drop a dependency, move the epic to another team) without writing anything.
Transforms: warehouse/transforms/forecast.py; definitions: docs/forecast.md."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.analyses.flow import flow_params
from pmolens.warehouse.transforms.flow import NO_GROUP, as_of_date, cycle_times, daily_throughput
from pmolens.warehouse.transforms.forecast import (
    Forecast,
    ForecastParams,
    Plan,
    Simulation,
    WhatIf,
    WhatIfError,
    forecast,
    forecast_how_many,
    plan,
    selection,
    simulate,
    what_if_forecast,
)
from pmolens.warehouse.transforms.kpis import snapshot_rows


def forecast_params(inputs: Inputs) -> ForecastParams:
    return inputs.settings.analytics.forecast


@once
def daily(inputs: Inputs) -> pl.DataFrame:
    """Items done per team per day over the forecast window, zero days included; every team
    with open delivery work has rows (all zero when it finished nothing)."""
    data = inputs.flow_data
    cycles = cycle_times(
        inputs.work_items,
        inputs.frames["status_changes"],
        inputs.as_of,
        flow_params(inputs),
        data=data,
    )
    teams = (
        data.items.filter(pl.col("delivery") & (pl.col("status_category") != "done"))
        .select(pl.col("team").fill_null(NO_GROUP))
        .unique()["team"]
        .to_list()
    )
    frame = daily_throughput(
        cycles, inputs.as_of, forecast_params(inputs).window_days, "team", teams
    )
    return frame.join(inputs.team_organisation, on="team", how="left")


@once
def result(inputs: Inputs) -> Forecast:
    return forecast(
        inputs.flow_data, inputs.dependency_edges, daily(inputs), forecast_params(inputs)
    )


@once
def how_many(inputs: Inputs) -> pl.DataFrame:
    p = forecast_params(inputs)
    day0 = as_of_date(inputs.as_of)
    dates = [day0 + timedelta(weeks=w) for w in sorted({*p.how_many_weeks, p.default_weeks})]
    return forecast_how_many(daily(inputs), inputs.as_of, dates, p.trials, p.seed)


@analysis("forecast_epics")
def _epics(inputs: Inputs) -> pl.DataFrame:
    return result(inputs).epics


@analysis("forecast_initiatives")
def _initiatives(inputs: Inputs) -> pl.DataFrame:
    return result(inputs).initiatives


@analysis("forecast_teams")
def _teams(inputs: Inputs) -> pl.DataFrame:
    """How many items per team by each stored horizon (``how_many_weeks`` and ``default_weeks``)."""
    return how_many(inputs)


@analysis("forecast_daily_throughput")
def _daily(inputs: Inputs) -> pl.DataFrame:
    """The sampled history, kept so /forecast/teams can answer for any date."""
    return daily(inputs)


@snapshot
def _forecast_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "forecast": per epic the P50/P85/P95 in days from the sync and the chance of its
    target date; per team the P85 "at least" items by ``default_weeks``."""
    day0 = as_of_date(inputs.as_of)
    epics = result(inputs).epics.with_columns(
        *[
            (pl.col(f"p{q}") - pl.lit(day0)).dt.total_days().alias(f"p{q}_days")
            for q in (50, 85, 95)
        ]
    )
    weeks = forecast_params(inputs).default_weeks
    teams = how_many(inputs).filter(pl.col("days") == weeks * 7)
    rows = pl.concat(
        [
            snapshot_rows(
                epics,
                "forecast",
                pl.format("epic:{}", "epic_id"),
                ["p50_days", "p85_days", "p95_days", "p_on_time"],
            ),
            snapshot_rows(
                teams, "forecast", pl.format("team:{}", "team"), ["items_p50", "items_p85"]
            ),
        ]
    )
    return rows.to_dicts()


# ------------------------------------------------------------------------------ what-if

#: What each run of a what-if answers (the EPIC_SCHEMA figures that a change can move).
RUN_FIELDS = (
    "team",
    "teams",
    "remaining_items",
    "p50",
    "p85",
    "p95",
    "own_p85",
    "p_on_time",
    "driven_by",
    "driven_by_key",
    "driven_share",
    "dependency_delay_days_p85",
    "blockers",
    "unforecast_blockers",
    "cycle_broken",
    "note",
)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@once
def base_plan(inputs: Inputs) -> Plan:
    """The forecast's simulation input for this snapshot, built once: every what-if on the same
    inputs starts from it instead of planning again (the costly step on a large warehouse)."""
    return plan(inputs.flow_data, inputs.dependency_edges, daily(inputs))


@once
def base_simulation(inputs: Inputs) -> Simulation:
    """The forecast's own simulation of this snapshot (its selection of epics), built once: the
    "current" run of every what-if on an epic of that selection."""
    p, params = base_plan(inputs), forecast_params(inputs)
    nodes = selection(p, params)
    return simulate(p, params.trials, params.seed, params.max_horizon_days, nodes, params.max_nodes)


def parse_change(
    pins: Sequence[str] = (), drop: Sequence[str] = (), team: str | None = None
) -> WhatIf:
    """A ``WhatIf`` from its URL form: ``pin`` = "BLOCKER=YYYY-MM-DD", ``drop`` =
    "BLOCKER=DEPENDENT" (ids or keys, resolved by ``what_if``), ``team`` (empty = none), so the
    API and the web page read a shared what-if link the same way. WhatIfError when malformed."""
    parsed_pins = []
    for text in pins:
        ident, sep, day = text.rpartition("=")
        if not sep or not ident or not _DAY.fullmatch(day):
            raise WhatIfError("malformed_pin", f"pin {text!r}: expected ITEM=YYYY-MM-DD", text)
        try:
            parsed_pins.append((ident, date.fromisoformat(day)))
        except ValueError:
            raise WhatIfError("malformed_pin", f"pin {text!r}: {day} is not a day", text) from None
    parsed_drop = []
    for text in drop:
        blocker, sep, dependent = text.partition("=")
        if not sep or not blocker or not dependent or "=" in dependent:
            raise WhatIfError("malformed_drop", f"drop {text!r}: expected BLOCKER=DEPENDENT", text)
        parsed_drop.append((blocker, dependent))
    return WhatIf(tuple(parsed_pins), tuple(parsed_drop), team or None)


def change_query(change: WhatIf) -> str:
    """The URL query of ``change`` (the inverse of ``parse_change``): what a shared link carries."""
    pairs = [("pin", f"{ident}={day.isoformat()}") for ident, day in change.pins]
    pairs += [("drop", f"{blocker}={dependent}") for blocker, dependent in change.drop]
    if change.team is not None:
        pairs.append(("team", change.team))
    return urlencode(pairs)


def _item_id(inputs: Inputs, ident: str) -> str:
    """``ident`` as an item id: itself when it is one, else the one item with that key;
    unknown text stays as it is (a blocker may live in a tracker that is not synced)."""
    items = inputs.work_items
    if items.filter(pl.col("item_id") == ident).height:
        return ident
    ids = sorted(set(items.filter(pl.col("key") == ident)["item_id"].to_list()))
    if len(ids) > 1:
        raise WhatIfError(
            "ambiguous_key",
            f"key {ident} names {len(ids)} items ({', '.join(ids)}): use the id",
            ident,
        )
    return ids[0] if ids else ident


def find_epic(inputs: Inputs, epic: str) -> str:
    """The item id of the open, forecast epic named by id or key; WhatIfError("unknown_epic")
    naming it otherwise."""
    epic_id = _item_id(inputs, epic)
    nodes = base_plan(inputs).nodes
    if nodes.filter((pl.col("node_id") == epic_id) & (pl.col("kind") == "epic")).height == 0:
        raise WhatIfError("unknown_epic", f"no open epic {epic!r} to forecast", epic)
    return epic_id


def what_if(inputs: Inputs, epic_id: str, change: WhatIf) -> dict[str, Any]:
    """Epic ``epic_id`` (id or key) re-forecast under ``change`` (ids or keys), next to its
    current forecast; both runs use the same seed, so they differ by the change alone.

    Validation (WhatIfError, a ValueError; ``code`` says which): unknown or not open epic;
    unknown team (the message lists the known ones: teams with open work or throughput in the
    window); a key that names several items; a pin on something that is not a blocker of this
    epic, directly or through others (after the dropped links), or a dropped link that is not
    on the epic's chain of blockers: such a change cannot move the date and is refused rather
    than shown as "no effect". Reads ``inputs`` only; writes nothing.

    Returns epic_id, key, title, url, target_date, as_of (the simulation's day 0), change (the
    resolved pins/drop/team with keys), query (the change as a URL query, by id), current and
    scenario (``RUN_FIELDS`` each), p50_shift_days / p85_shift_days (scenario minus current;
    None when either is beyond the horizon).
    """
    epic = find_epic(inputs, epic_id)
    resolved = WhatIf(
        pins=tuple((_item_id(inputs, ident), day) for ident, day in change.pins),
        drop=tuple((_item_id(inputs, b), _item_id(inputs, d)) for b, d in change.drop),
        team=change.team or None,
    )
    p, params = base_plan(inputs), forecast_params(inputs)
    frame = what_if_forecast(
        inputs.flow_data,
        inputs.dependency_edges,
        daily(inputs),
        params,
        epic,
        resolved,
        base=p,
        current=base_simulation(inputs) if epic in selection(p, params) else None,
    )
    current, scenario = frame.row(0, named=True), frame.row(1, named=True)
    wanted = {i for pair in resolved.drop for i in pair} | {i for i, _ in resolved.pins}
    keys = dict(
        inputs.work_items.filter(pl.col("item_id").is_in(list(wanted)))
        .select("item_id", "key")
        .iter_rows()
    )

    def shift(q: str) -> int | None:
        a, b = current[q], scenario[q]
        return None if a is None or b is None else (b - a).days

    return {
        "epic_id": epic,
        "key": current["key"],
        "title": current["title"],
        "url": current["url"],
        "target_date": current["target_date"],
        "as_of": p.as_of_day,
        "change": {
            "pins": [{"id": i, "key": keys.get(i), "date": d} for i, d in resolved.pins],
            "drop": [
                {
                    "blocker": b,
                    "blocker_key": keys.get(b),
                    "dependent": d,
                    "dependent_key": keys.get(d),
                }
                for b, d in resolved.drop
            ],
            "team": resolved.team,
        },
        "query": change_query(resolved),
        "current": {f: current[f] for f in RUN_FIELDS},
        "scenario": {f: scenario[f] for f in RUN_FIELDS},
        "p50_shift_days": shift("p50"),
        "p85_shift_days": shift("p85"),
    }
