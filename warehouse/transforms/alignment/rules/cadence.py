"""Cadence: teams of one organisation should start their sprints on the same days."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext, days_between, lit_ts
from pmolens.warehouse.transforms.alignment.contract import empty_hits, rule, team_hits
from pmolens.warehouse.transforms.alignment.text import fmt_date, labelled, params, txt

#: Phases are counted in days from this Monday: two teams with the same cadence and phase start
#: their sprints on the same days.
_EPOCH_MONDAY = date(2000, 1, 3)


@rule(
    "sprint_cadence_misalignment",
    "Team off the organisation's sprint cadence",
    "Scrum@Scale runs all teams on one cadence so that Scrum of Scrums, integration and review "
    "happen together; different sprint boundaries delay every cross-team hand-off.",
    "warning",
    "SoS Master",
)
def sprint_cadence_misalignment(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: per team, its cadence (the most common number of days between sprint starts in the
    last ``window_weeks``, else its median sprint length rounded to whole weeks) and phase (the
    day within that cadence its latest sprint started); in organisations with ``min_teams`` or
    more teams, every team whose cadence or phase differs from the majority's is a team-level
    finding (all teams when no single cadence has the most teams).
    Why: teams on one cadence meet, integrate and review together; other boundaries delay every
    hand-off. Who acts: the Scrum of Scrums Master."""
    window_start = ctx.as_of - timedelta(weeks=t["window_weeks"])
    keys = ["organisation", "team"]
    sprints = (
        ctx.sprints.filter(
            pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
            & pl.col("team").is_not_null()
            & (pl.col("start") <= lit_ts(ctx.as_of))
            & (pl.col("end") >= lit_ts(window_start))
        )
        .with_columns(
            pl.col("start").dt.date().alias("_start_day"),
            days_between("start", "end").alias("_length_days"),
        )
        .sort("organisation", "team", "_start_day")
        .unique([*keys, "_start_day"], keep="first", maintain_order=True)
    )
    if sprints.height == 0:
        return empty_hits()
    previous_start = pl.col("_start_day").shift(1).over(keys)
    usual_gap = (  # per team: the most common gap between sprint starts (ties: the shortest)
        sprints.select(
            *keys, (pl.col("_start_day") - previous_start).dt.total_days().alias("_gap_days")
        )
        .filter(pl.col("_gap_days").is_not_null())
        .group_by(*keys, "_gap_days")
        .len()
        .sort(*keys, "len", "_gap_days", descending=[False, False, True, False])
        .unique(keys, keep="first", maintain_order=True)
        .select(*keys, "_gap_days")
    )
    length_in_weeks = (pl.col("_median_length_days") / 7).round(0) * 7
    teams = (
        sprints.group_by(keys)
        .agg(
            pl.col("_start_day").max().alias("_latest_start_day"),
            pl.col("start").min().alias("_first_start"),
            pl.col("_length_days").median().alias("_median_length_days"),
        )
        .join(usual_gap, on=keys, how="left", nulls_equal=True)
        .with_columns(
            pl.coalesce(pl.col("_gap_days"), length_in_weeks.clip(7, None).cast(pl.Int64)).alias(
                "_cadence_days"
            )
        )
        .with_columns(
            (
                (pl.col("_latest_start_day") - pl.lit(_EPOCH_MONDAY)).dt.total_days()
                % pl.col("_cadence_days")
            ).alias("_phase_day"),
            pl.len().over("organisation").alias("_org_teams"),
        )
        .filter(pl.col("_org_teams") >= t["min_teams"])
    )
    cadences = teams.group_by("organisation", "_cadence_days", "_phase_day").agg(
        pl.len().alias("_teams_on_cadence"),
        pl.col("_latest_start_day").max().alias("_cadence_latest_start_day"),
    )
    most_followed = cadences.filter(
        pl.col("_teams_on_cadence") == pl.col("_teams_on_cadence").max().over("organisation")
    )
    single_winner = (
        most_followed.group_by("organisation").len().filter(pl.col("len") == 1).drop("len")
    )
    majority = most_followed.join(
        single_winner, on="organisation", how="semi", nulls_equal=True
    ).select(
        "organisation",
        pl.col("_cadence_days").alias("_majority_cadence_days"),
        pl.col("_phase_day").alias("_majority_phase_day"),
        pl.col("_cadence_latest_start_day").alias("_majority_latest_start_day"),
        pl.col("_teams_on_cadence").alias("_majority_teams"),
    )
    n_cadences = cadences.group_by("organisation").len().rename({"len": "_n_cadences"})
    off_cadence = (
        teams.join(majority, on="organisation", how="left", nulls_equal=True)
        .join(n_cadences, on="organisation", how="left", nulls_equal=True)
        .filter(
            pl.col("_majority_cadence_days").is_null()
            | (pl.col("_cadence_days") != pl.col("_majority_cadence_days"))
            | (pl.col("_phase_day") != pl.col("_majority_phase_day"))
        )
    )
    own = pl.format(
        "Team {} of {} runs {}-day sprints (latest started {} {})",
        "team",
        txt("organisation"),
        "_cadence_days",
        pl.col("_latest_start_day").dt.strftime("%a"),
        fmt_date("_latest_start_day"),
    )
    message = (
        pl.when(pl.col("_majority_cadence_days").is_null())
        .then(
            pl.format(
                "{}; the {} teams of {} follow {} different cadences with no majority: agree one "
                "sprint cadence",
                own,
                "_org_teams",
                txt("organisation"),
                "_n_cadences",
            )
        )
        .otherwise(
            pl.format(
                "{}, while {} of its {} teams run {}-day sprints (latest started {} {}): align "
                "the sprint boundaries",
                own,
                "_majority_teams",
                "_org_teams",
                "_majority_cadence_days",
                pl.col("_majority_latest_start_day").dt.strftime("%a"),
                fmt_date("_majority_latest_start_day"),
            )
        )
    )
    weekday = labelled(  # "Mon" -> finding_weekday_mon
        pl.format(
            "finding_weekday_{}", pl.col("_latest_start_day").dt.strftime("%a").str.to_lowercase()
        ),
        pl.col("_latest_start_day").dt.strftime("%a"),
    )
    majority_weekday = labelled(
        pl.format(
            "finding_weekday_{}",
            pl.col("_majority_latest_start_day").dt.strftime("%a").str.to_lowercase(),
        ),
        pl.col("_majority_latest_start_day").dt.strftime("%a"),
    )
    own_params = {
        "team": pl.col("team"),
        "organisation": txt("organisation"),
        "days": pl.col("_cadence_days"),
        "weekday": weekday,
        "latest": fmt_date("_latest_start_day"),
    }
    key = (
        pl.when(pl.col("_majority_cadence_days").is_null())
        .then(pl.lit("finding_cadence_no_majority"))
        .otherwise(pl.lit("finding_cadence_off"))
    )
    values = (
        pl.when(pl.col("_majority_cadence_days").is_null())
        .then(params(**own_params, teams=pl.col("_org_teams"), cadences=pl.col("_n_cadences")))
        .otherwise(
            params(
                **own_params,
                majority_teams=pl.col("_majority_teams"),
                teams=pl.col("_org_teams"),
                majority_days=pl.col("_majority_cadence_days"),
                majority_weekday=majority_weekday,
                majority_latest=fmt_date("_majority_latest_start_day"),
            )
        )
    )
    return team_hits(off_cadence, message, pl.col("_first_start"), key, values)
