"""Synthetic canonical frames at scale (1,000,000 items in a few seconds), for the benchmarks.

Vectorised numpy/polars only. The programme looks like a real one: organisations with one source
each, teams per organisation, a hierarchy initiative -> epic -> feature -> story (each level
owned by a team of the parent's organisation most of the time), two-week sprints per team,
target dates on part of the work, ``blocks`` links mostly inside an epic or between neighbouring
epics (partly across teams and organisations, mostly forward in backlog order so the graph is
nearly acyclic, with a few back links that close cycles), a few links to items outside the
warehouse, and a status history of ~5 changes per item (plus flag changes).

Nothing is written to disk; ``generate(n_items)`` returns the frames ``Warehouse.frames()`` would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.model import SCHEMAS

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
US_PER_DAY = 86_400_000_000


def _ids(source: np.ndarray, native: np.ndarray) -> pl.Series:
    """``"<source>:<native>"`` for arrays of source index and native number."""
    return pl.select(
        pl.format("o{}:{}", pl.Series(source), pl.Series(native)).alias("id")
    ).to_series()


def _finish(kind: str, data: dict[str, pl.Series | np.ndarray | list]) -> pl.DataFrame:
    schema = SCHEMAS[kind]
    n = len(next(iter(data.values())))
    cols = []
    for name, dtype in schema.items():
        if name in data:
            cols.append(pl.Series(name, data[name]).cast(dtype))
        else:
            cols.append(pl.Series(name, [None] * 0, dtype=dtype).extend_constant(None, n))
    return pl.DataFrame(cols)


def generate(
    n_items: int = 1_000_000,
    links_per_item: float = 2.0,
    changes_per_item: float = 5.0,
    n_orgs: int = 8,
    n_teams: int = 200,
    seed: int = 42,
    as_of: datetime = AS_OF,
) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    n = n_items
    as_of_us = int(as_of.timestamp() * 1_000_000)
    # ------------------------------------------------------------------ teams, orgs, sources
    team_org = np.sort(rng.integers(0, n_orgs, n_teams))
    team_names = np.array([f"Team {t:03d}" for t in range(n_teams)], dtype=object)
    org_names = np.array([f"Org {o}" for o in range(n_orgs)], dtype=object)

    # ------------------------------------------------------------------ hierarchy
    # level blocks in item order: initiatives, epics, features, stories
    n_init, n_epic, n_feat = max(1, n // 1000), max(1, n // 100), max(1, n // 20)
    level = np.empty(n, dtype=object)
    level[:] = "story"
    level[:n_init] = "initiative"
    level[n_init : n_init + n_epic] = "epic"
    level[n_init + n_epic : n_init + n_epic + n_feat] = "feature"
    stories = np.arange(n_init + n_epic + n_feat, n)
    parent = np.full(n, -1, dtype=np.int64)
    parent[n_init : n_init + n_epic] = rng.integers(0, n_init, n_epic)
    feats = np.arange(n_init + n_epic, n_init + n_epic + n_feat)
    parent[feats] = n_init + np.sort(rng.integers(0, n_epic, n_feat))
    parent[stories] = feats[np.sort(rng.integers(0, n_feat, len(stories)))]
    # teams: top levels random; children mostly inherit the parent's team (80 %)
    team = rng.integers(0, n_teams, n)
    for lo, hi in ((n_init, n_init + n_epic), (feats[0], feats[-1] + 1), (stories[0], n)):
        inherit = rng.random(hi - lo) < 0.8
        idx = np.arange(lo, hi)[inherit]
        team[idx] = team[parent[idx]]
    org = team_org[team]
    native = np.arange(n) + 1
    item_ids = _ids(org, native)
    # epic of each item (for link locality): walk up to the epic level
    epic = np.arange(n)
    epic[feats] = parent[feats]
    epic[stories] = parent[parent[stories]]
    epic[:n_init] = -1

    # ------------------------------------------------------------------ status and dates
    cat_code = rng.choice(3, n, p=[0.45, 0.2, 0.35])  # todo / in progress / done
    categories = np.array(["todo", "in_progress", "done"], dtype=object)
    raw = np.array(["To Do", "In Progress", "Done"], dtype=object)[cat_code]
    blocked = (cat_code == 1) & (rng.random(n) < 0.05)
    raw[blocked] = "Blocked"
    created = as_of_us - rng.integers(1, 400, n) * US_PER_DAY - rng.integers(0, US_PER_DAY, n)
    updated = np.minimum(created + rng.integers(0, 60, n) * US_PER_DAY, as_of_us)
    resolved = np.where(cat_code == 2, updated, np.iinfo(np.int64).min)
    due = as_of.date()
    due_days = rng.integers(-60, 180, n)
    has_due = rng.random(n) < 0.3
    # sprints: 12 two-week sprints per team around as_of; half the open stories are in one
    n_spr = 12
    spr_start0 = as_of_us - 6 * 14 * US_PER_DAY
    s_team = np.repeat(np.arange(n_teams), n_spr)
    s_k = np.tile(np.arange(n_spr), n_teams)
    s_start = spr_start0 + s_k * 14 * US_PER_DAY
    s_end = s_start + 14 * US_PER_DAY
    s_state = np.where(
        s_end <= as_of_us, "closed", np.where(s_start > as_of_us, "future", "active")
    )
    in_sprint = (level == "story") & (rng.random(n) < 0.5)
    sprint_k = rng.integers(0, n_spr, n)
    sprint_row = team * n_spr + sprint_k
    sprint_ids = _ids(team_org[s_team], s_team * 100 + s_k + 1)

    work_items = _finish(
        "work_items",
        {
            "item_id": item_ids,
            "source": pl.Series(np.char.add("o", org.astype(str))).cast(pl.String),
            "native_id": pl.Series(native).cast(pl.String),
            "key": pl.select(pl.format("K{}-{}", pl.Series(org), pl.Series(native))).to_series(),
            "url": pl.select(
                pl.format(
                    "https://tracker{}.example/browse/K{}-{}",
                    pl.Series(org),
                    pl.Series(org),
                    pl.Series(native),
                )
            ).to_series(),
            "organisation": pl.Series(org_names[org].tolist(), dtype=pl.String),
            "project": pl.Series(np.char.add("P", org.astype(str))).cast(pl.String),
            "raw_type": pl.Series(level.tolist(), dtype=pl.String).str.to_titlecase(),
            "level": pl.Series(level.tolist(), dtype=pl.String),
            "title": pl.select(pl.format("Work item {}", pl.Series(native))).to_series(),
            "has_description": rng.random(n) < 0.8,
            "raw_status": pl.Series(raw.tolist(), dtype=pl.String),
            "status_category": pl.Series(categories[cat_code].tolist(), dtype=pl.String),
            "team": pl.Series(team_names[team].tolist(), dtype=pl.String),
            "priority_rank": rng.integers(1, 6, n).astype(np.int32),
            "estimate": np.where(
                rng.random(n) < 0.7, rng.choice([1.0, 2.0, 3.0, 5.0, 8.0], n), np.nan
            ),
            "created": pl.Series(created).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "updated": pl.Series(updated).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "resolved": pl.Series(np.where(cat_code == 2, resolved, 0))
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC"),
            "sprint_id": sprint_ids.gather(sprint_row),
            "parent_id": item_ids.gather(np.maximum(parent, 0)),
            "business_value": np.where(
                rng.random(n) < 0.3, rng.integers(1, 100, n).astype(float), np.nan
            ),
            "flagged": blocked & (rng.random(n) < 0.5),
            "is_deleted": np.zeros(n, dtype=bool),
        },
    )
    epoch_days = (due - datetime(1970, 1, 1).date()).days
    due_series = pl.Series(due_days + epoch_days, dtype=pl.Int32).cast(pl.Date)
    work_items = work_items.with_columns(
        pl.when(pl.Series(has_due)).then(due_series).alias("due_date"),
        pl.when(pl.Series(in_sprint)).then(pl.col("sprint_id")).alias("sprint_id"),
        pl.when(pl.Series(parent >= 0)).then(pl.col("parent_id")).alias("parent_id"),
        pl.when(pl.Series(cat_code == 2)).then(pl.col("resolved")).alias("resolved"),
        pl.col("estimate").fill_nan(None),
        pl.col("business_value").fill_nan(None),
    )

    # ------------------------------------------------------------------ links
    m = int(n * links_per_item)
    src = rng.integers(n_init, n, m)  # blockers below initiative level
    kind = rng.random(m)
    near = src + rng.integers(1, 400, m)  # neighbours in backlog order (same or next epic)
    far = rng.integers(n_init, n, m)  # anywhere: other teams and organisations
    dst = np.where(kind < 0.75, near, far)
    dst = np.where(dst >= n, src - rng.integers(1, 400, m), dst)
    back = rng.random(m) < 0.01  # a few links against backlog order close cycles
    fwd_src, fwd_dst = np.minimum(src, dst), np.maximum(src, dst)
    b = np.where(back, fwd_dst, fwd_src)
    d = np.where(back, fwd_src, fwd_dst)
    ok = (b != d) & (b >= 0) & (d >= 0)
    b, d = b[ok], d[ok]
    m = len(b)
    link_src = org[d]
    to_ids = item_ids.gather(d)
    outside = rng.random(m) < 0.005  # dependent in a tracker not synced
    to_ids = pl.select(
        pl.when(pl.Series(outside)).then(pl.lit(None, pl.String)).otherwise(to_ids)
    ).to_series()
    links = _finish(
        "links",
        {
            "source": pl.Series(np.char.add("o", link_src.astype(str))).cast(pl.String),
            "link_id": pl.Series(np.arange(m)).cast(pl.String),
            "from_item": item_ids.gather(b),
            "to_item": to_ids,
            "kind": pl.Series(["blocks"] * 0, dtype=pl.String).extend_constant("blocks", m),
            "raw_type": pl.Series(["Blocks"] * 0, dtype=pl.String).extend_constant("Blocks", m),
            "resolved": ~outside,
        },
    )

    # ------------------------------------------------------------------ status history
    k = int(n * changes_per_item)
    who = np.sort(rng.integers(0, n, k))
    at = created[who] + rng.integers(1, 120, k) * US_PER_DAY
    at = np.minimum(at, as_of_us)
    to_code = rng.choice(3, k, p=[0.3, 0.45, 0.25])
    from_code = rng.choice(3, k, p=[0.4, 0.4, 0.2])
    is_flag = rng.random(k) < 0.1
    status_names = np.array(["To Do", "In Progress", "Done"], dtype=object)
    to_status = status_names[to_code]
    to_status[(to_code == 1) & (rng.random(k) < 0.08)] = "Blocked"
    to_status = np.where(is_flag, np.where(rng.random(k) < 0.5, "Impediment", ""), to_status)
    changes = _finish(
        "status_changes",
        {
            "source": pl.Series(np.char.add("o", org[who].astype(str))).cast(pl.String),
            "item_id": item_ids.gather(who),
            "change_id": pl.Series(np.arange(k)).cast(pl.String),
            "at": pl.Series(at).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "field": pl.Series(np.where(is_flag, "flagged", "status").tolist(), dtype=pl.String),
            "from_status": pl.Series(status_names[from_code].tolist(), dtype=pl.String),
            "to_status": pl.Series(to_status.tolist(), dtype=pl.String),
            "from_category": pl.Series(categories[from_code].tolist(), dtype=pl.String),
            "to_category": pl.Series(categories[to_code].tolist(), dtype=pl.String),
        },
    )

    sprints = _finish(
        "sprints",
        {
            "sprint_id": sprint_ids,
            "source": pl.Series(np.char.add("o", team_org[s_team].astype(str))).cast(pl.String),
            "native_id": pl.Series(s_team * 100 + s_k + 1).cast(pl.String),
            "name": pl.select(pl.format("Sprint {}", pl.Series(s_k + 1))).to_series(),
            "team": pl.Series(team_names[s_team].tolist(), dtype=pl.String),
            "board": pl.Series(team_names[s_team].tolist(), dtype=pl.String),
            "state": pl.Series(s_state.tolist(), dtype=pl.String),
            "start": pl.Series(s_start).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "end": pl.Series(s_end).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        },
    )
    teams = _finish(
        "teams",
        {
            "team": pl.Series(team_names.tolist(), dtype=pl.String),
            "organisation": pl.Series(org_names[team_org].tolist(), dtype=pl.String),
            "source": pl.Series(np.char.add("o", team_org.astype(str))).cast(pl.String),
        },
    )
    organisations = _finish(
        "organisations",
        {
            "organisation": pl.Series(org_names.tolist(), dtype=pl.String),
            "description": [None] * n_orgs,
        },
    )
    sources = _finish(
        "sources",
        {
            "source": pl.Series([f"o{o}" for o in range(n_orgs)], dtype=pl.String),
            "kind": ["jira_cloud" if o % 2 == 0 else "azure_devops" for o in range(n_orgs)],
            "organisation": pl.Series(org_names.tolist(), dtype=pl.String),
            "base_url": [f"https://tracker{o}.example" for o in range(n_orgs)],
        },
    )
    return {
        "work_items": work_items,
        "links": links,
        "sprints": sprints,
        "status_changes": changes,
        "teams": teams,
        "organisations": organisations,
        "sources": sources,
    }


def commit_per_source(warehouse: Any, frames: dict[str, pl.DataFrame]) -> None:
    """Commit the synthetic frames as one full sync run per source (``Warehouse.commit_sync``,
    the path a real sync takes), so a benchmark's warehouse is what syncs leave behind."""
    from pmolens.warehouse.store import Staged

    for source in frames["sources"]["source"].to_list():

        def own(kind: str, source: str = source) -> list[pl.DataFrame]:
            return [frames[kind].filter(pl.col("source") == source)]

        staged = Staged(
            work_items=own("work_items"),
            links=own("links"),
            sprints=own("sprints"),
            status_changes=own("status_changes"),
        )
        run_id = warehouse.begin_run(source, "full", None)
        warehouse.commit_sync(run_id, source, staged, live_ids=None, cursor=None)


def source_configs(frames: dict[str, pl.DataFrame], token_env: str) -> list[dict[str, Any]]:
    """The ``[[sources]]`` of a config for the synthetic programme: one per generated source,
    each with the keys its tracker kind requires (the token is never read: nothing is synced)."""
    sources = []
    for row in frames["sources"].iter_rows(named=True):
        source = {
            "name": row["source"],
            "kind": row["kind"],
            "organisation": row["organisation"],
            "base_url": row["base_url"],
            "token_env": token_env,
        }
        if row["kind"] == "jira_cloud":
            source |= {"email": "bench@example.com", "jql": "project = BENCH"}
        if row["kind"] == "azure_devops":
            source["project"] = "Bench"
        sources.append(source)
    return sources
