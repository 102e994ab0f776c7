"""Outputs identical before and after a speed-up: the same work through two versions of pmolens.

    python bench/same_output.py --ref 4f9b854              # this checkout against that commit
    python bench/same_output.py --ref main~3 --items 3000 --synthetic 100000

1. **Sync.** One simulator (seed 7, every demo tracker: Jira Cloud, Jira Data Center, Azure
   DevOps) is synced in full by this checkout and by ``--ref``; the canonical tables
   (``work_items``, ``links``, ``sprints``, ``status_changes``) and each run's counts must be
   equal, the sync's own bookkeeping (``synced_at``, run ids) left out.
2. **Refresh.** The synthetic frames of bench/synthetic.py (``--synthetic`` items, 0 to skip)
   are committed and refreshed at the same ``as_of`` by both versions; every ``result_*`` table
   must be equal.

``--ref`` is checked out into a temporary git worktree and imported as ``pmolens`` from there (a
tree of links, as ``make typecheck`` builds one), each version in a process of its own. Prints
``SAME <table>`` or ``DIFFERENT <table>: ...`` per table and exits 1 on any difference. Floats
count as the same within a relative 1e-9 (polars sums in parallel, in an order that changes from
run to run). Not a timed benchmark: it says whether a faster version still gives the same answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "connectors", "pipeline", "reports", "simulator", "warehouse")
CANONICAL = ("work_items", "links", "sprints", "status_changes")
BOOKKEEPING = ("synced_at", "run_id", "first_seen_run", "last_seen_run")
FLOAT_TOLERANCE = 1e-9  # relative: a float that differs by less is the same figure


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ what each version runs


def child_sync(out: Path, url: str) -> None:
    """Sync every demo source in full into a fresh warehouse; dump the canonical tables."""
    from pmolens.pipeline.sync import sync_source
    from pmolens.simulator import DEMO_TOKEN, demo_settings
    from pmolens.warehouse.config import settings_from_dict
    from pmolens.warehouse.store import Warehouse

    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    data = demo_settings(url)
    data["warehouse"] = {"path": str(out / "warehouse.duckdb")}
    settings = settings_from_dict(data)
    with Warehouse.open(settings) as wh:
        wh.register_config(settings)
        for source in settings.sources:
            asyncio.run(sync_source(wh, settings, source, full=True))
        for table in CANONICAL:
            frame = wh.query(f"SELECT * FROM {table}")
            frame.drop([c for c in frame.columns if c in BOOKKEEPING]).write_parquet(
                out / f"sync.{table}.parquet"
            )
        runs = wh.query(
            "SELECT source, outcome, items, links, status_changes, problems FROM sync_runs"
        )
        runs.write_parquet(out / "sync.runs.parquet")


def child_refresh(out: Path, items: int) -> None:
    """Commit the synthetic frames, refresh at their fixed as_of; dump every result table."""
    sys.path.insert(0, str(ROOT))
    from bench.synthetic import AS_OF, commit_per_source, generate
    from pmolens.pipeline.refresh import refresh
    from pmolens.warehouse.config import Settings
    from pmolens.warehouse.store import Warehouse

    with Warehouse(out / "refresh.duckdb") as wh:
        commit_per_source(wh, generate(items))
        refresh(wh, Settings(), AS_OF)
        names = wh.query("SELECT name FROM results")["name"].to_list()
        for name in names:
            wh.query(f"SELECT * FROM result_{name}").write_parquet(out / f"result.{name}.parquet")


# ------------------------------------------------------------------------------ comparing


def same(a_path: Path, b_path: Path) -> str | None:
    """None when the two dumps hold the same rows (in any order), else what differs."""
    import polars as pl

    a, b = pl.read_parquet(a_path), pl.read_parquet(b_path)
    if a.columns != b.columns:
        return f"columns {a.columns} vs {b.columns}"
    if a.height != b.height:
        return f"{a.height} vs {b.height} rows"
    plain = [c for c, t in a.schema.items() if not t.is_nested()]
    if plain:
        a, b = a.sort(plain, nulls_last=True), b.sort(plain, nulls_last=True)
    if a.equals(b):
        return None
    for column in a.columns:
        if a[column].equals(b[column]):
            continue
        if a.schema[column].is_float() and a[column].is_null().equals(b[column].is_null()):
            # a parallel sum adds in another order from run to run: the last bits may differ
            ratio = ((a[column] - b[column]).abs() / b[column].abs().clip(1e-12)).max()
            gap = float(ratio) if isinstance(ratio, int | float) else float("nan")
            if gap <= FLOAT_TOLERANCE:
                continue
            return f"column {column} differs (largest relative difference {gap:.3g})"
        return f"column {column} differs"
    return None


def package_view(ref: str, tmp: Path) -> Path:
    """``ref`` checked out as a worktree, and a folder where it imports as ``pmolens``."""
    tree = tmp / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(tree), ref],
        check=True,
        capture_output=True,
    )
    view = tmp / "view" / "pmolens"
    view.mkdir(parents=True)
    (view / "__init__.py").write_text("")
    for package in PACKAGES:
        (view / package).symlink_to(tree / package)
    return view.parent


def run_version(
    label: str, out: Path, url: str, args: argparse.Namespace, view: Path | None
) -> None:
    out.mkdir(parents=True)
    env = dict(os.environ)
    if view is not None:
        env["PYTHONPATH"] = str(view)
    command = [sys.executable, __file__, "--child", str(out), "--url", url]
    command += ["--synthetic", str(args.synthetic)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=out)  # nothing imported from the cwd
    print(f"  {label}: done in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="the git ref to compare this checkout with")
    parser.add_argument("--items", type=int, default=3000, help="simulated items (sync)")
    parser.add_argument("--synthetic", type=int, default=30000, help="items for the refresh")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_sync(args.child, args.url)
        if args.synthetic:
            child_refresh(args.child, args.synthetic)
        return 0
    if not args.ref:
        parser.error("--ref is required (a commit, tag or branch to compare with)")

    tmp = Path(tempfile.mkdtemp(prefix="pmolens-same-"))
    port = free_port()
    command = [sys.executable, "-m", "pmolens.simulator", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--size", str(args.items), "--latency-ms", "0"]
    simulator = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{url}/_sim/stats", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        print(
            f"comparing this checkout with {args.ref} ({args.items:,} simulated items, "
            f"{args.synthetic:,} synthetic items for the refresh)",
            flush=True,
        )
        view = package_view(args.ref, tmp)
        run_version(args.ref, tmp / "before", url, args, view)
        run_version("this checkout", tmp / "after", url, args, None)
        before = sorted(p.name for p in (tmp / "before").glob("*.parquet"))
        after = sorted(p.name for p in (tmp / "after").glob("*.parquet"))
        differences = 0
        for name in sorted(set(before) | set(after)):
            if name not in before or name not in after:
                print(f"DIFFERENT {name}: only {'after' if name in after else 'before'}")
                differences += 1
                continue
            problem = same(tmp / "before" / name, tmp / "after" / name)
            print(f"SAME {name}" if problem is None else f"DIFFERENT {name}: {problem}")
            differences += problem is not None
        print(f"{len(set(before) | set(after))} tables compared, {differences} different")
        return 1 if differences else 0
    finally:
        simulator.kill()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "tree")],
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
