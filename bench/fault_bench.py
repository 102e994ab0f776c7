"""Fault benchmark: many syncs under injected faults, counted; what was lost, doubled or misrecorded.

The campaign of ``tests/warehouse/test_faults.py`` at a larger size: the three demo sources (Jira
Cloud, Jira DC, Azure DevOps) on the loopback simulator, a full sync, incremental syncs after
each simulated day of changes (status moves, edits, deletions, moves between projects and
teams), a second full sync half-way, and every fourth sync a storm in which most runs fail.
During every sync the simulator answers a share of requests with 429, 503 or a 200 of the wrong
shape (``{"errorMessages": ["maintenance"]}`` or an HTML maintenance page, alternately). The
client's backoff waits are capped at 10 ms (still taken, in order), so the figures are about
what syncs commit, not about waiting. A last sync without faults, then the checks (see
``tests/warehouse/fault_campaign.py``).

Printed as ``BENCH <name> <value> <unit>``; the exit status is 1 when a row was lost,
duplicated or stale, or a run record did not match its commit.

    python bench/fault_bench.py            # 5,000 items, 24 syncs under faults
    python bench/fault_bench.py --quick    # 600 items, 10 syncs
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.warehouse.fault_campaign import Report, run_campaign, schedule  # noqa: E402


def bench(name: str, value: float, unit: str) -> None:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"BENCH {name} {text} {unit}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 items, 10 syncs")
    parser.add_argument("--size", type=int, default=None, help="items over the three trackers")
    parser.add_argument("--syncs", type=int, default=None, help="syncs under faults")
    parser.add_argument("--rate", type=float, default=0.05, help="share per fault kind")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    size = args.size or (600 if args.quick else 5000)
    syncs = args.syncs or (10 if args.quick else 24)
    # the retries' warnings are the point of the exercise, not news
    logging.getLogger("pmolens").setLevel(logging.ERROR)

    def progress(n: int, report: Report) -> None:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))
        print(f"# sync {n + 1}/{syncs + 1}: {outcomes}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="pmolens-fault-bench-") as workdir:
        report = run_campaign(
            Path(workdir),
            size=size,
            rounds=schedule(syncs, rate=args.rate),
            seed=args.seed,
            on_round=progress,
        )
    bench("fault_items", report.items, "items")
    bench("fault_syncs", report.rounds, "syncs")
    bench("fault_runs", report.runs, "runs")
    for outcome in ("success", "partial", "failed"):
        bench(f"fault_runs_{outcome}", report.outcomes.get(outcome, 0), "runs")
    bench("fault_requests", report.requests, "requests")
    bench("fault_injected", report.injected, "faults")
    for kind in ("429", "5xx", "malformed"):
        bench(f"fault_injected_{kind}", report.faults.get(kind, 0), "faults")
    bench("fault_rows_lost", report.rows_lost, "rows")
    bench("fault_rows_duplicated", report.rows_duplicated, "rows")
    bench("fault_rows_stale", report.rows_stale, "rows")
    bench("fault_live_marked_deleted", report.live_marked_deleted, "rows")
    bench("fault_runs_mismatched", report.runs_mismatched, "runs")
    bench("fault_failed_bare_errors", report.bare_errors, "runs")
    bench("fault_seconds", round(report.seconds, 3), "s")
    for line in report.mismatches:
        print(f"# MISMATCH {line}", flush=True)
    broken = (
        report.rows_lost
        + report.rows_duplicated
        + report.rows_stale
        + report.live_marked_deleted
        + report.runs_mismatched
        + len(report.mismatches)
    )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
