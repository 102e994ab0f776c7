"""Alignment rules and the impediment backlog at scale: seconds per step.

``run(frames, edges)`` is the part bench/analytics_bench.py calls; run this file on its own for
the alignment figures alone (``python -m bench.alignment_bench --items 1000000``), on the
synthetic portfolio of bench/synthetic.py.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Mapping
from datetime import datetime

import polars as pl

from pmolens.warehouse.store import utcnow
from pmolens.warehouse.transforms.alignment import (
    RuleContext,
    alignment_scores,
    order_findings,
    resolve_rules,
    run_rule,
    update_findings,
)
from pmolens.warehouse.transforms.impediments import impediment_backlog


def run(
    frames: Mapping[str, pl.DataFrame], edges: pl.DataFrame, as_of: datetime | None = None
) -> dict[str, float]:
    """Seconds per step: ``alignment_context`` (parent walk, sprint states), ``rule:<id>`` each,
    ``alignment_lifecycle`` (order + merge with a previous state), ``alignment_scores``,
    ``impediments``, and ``alignment_total``; ``alignment_findings`` is a row count."""
    as_of = as_of or utcnow()
    timings: dict[str, float] = {}
    start = step = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal step
        now = time.perf_counter()
        timings[name] = now - step
        step = now

    ctx = RuleContext(frames, edges, as_of)
    _ = ctx.items, ctx.ancestors, ctx.epic_of, ctx.sprints, ctx.status_changes, ctx.last_change
    lap("alignment_context")
    parts = []
    for rule_id, resolved in resolve_rules(None).items():
        parts.append(run_rule(resolved, ctx))
        lap(f"rule:{rule_id}")
    findings = order_findings(pl.concat(parts))
    state = update_findings(findings.head(findings.height // 2), findings, as_of)
    lap("alignment_lifecycle")
    alignment_scores(frames["work_items"], state, "team")
    alignment_scores(frames["work_items"], state, "organisation")
    lap("alignment_scores")
    impediment_backlog(frames["work_items"], edges, frames["status_changes"], as_of)
    lap("impediments")
    timings["alignment_total"] = time.perf_counter() - start
    timings["alignment_findings"] = float(findings.height)
    return timings


def main() -> None:
    from bench.synthetic import generate
    from pmolens.warehouse.transforms.dependencies import dependency_edges

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    as_of = utcnow()
    frames = generate(args.items)
    began = time.perf_counter()
    edges = dependency_edges(frames, as_of)
    edge_seconds = time.perf_counter() - began
    timings = run(frames, edges, as_of)
    print(f"BENCH dependency_edges {edge_seconds:.2f} s")
    for name, value in timings.items():
        unit = "rows" if name == "alignment_findings" else "s"
        print(f"BENCH {name.replace(':', '_')} {value:.3f} {unit}")
    total = edge_seconds + timings["alignment_total"]
    print(f"BENCH alignment_with_dependencies {total:.2f} s")
    print(f"BENCH alignment_vs_target_ratio {total / 10.0:.2f} x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    print(f"BENCH alignment_peak_rss {peak:.2f} GiB")


if __name__ == "__main__":
    main()
