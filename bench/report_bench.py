"""Steering report benchmark: build the HTML report over a 100,000-item warehouse.

The warehouse is the synthetic programme of bench/api_bench.py (committed through Warehouse,
analyses materialised as after a sync). The report is built exactly as ``pmolens report`` does
(``reports.steering.build_report``), once per language, plotly inlined; time and file size are
printed as ``BENCH report_<lang>_<seconds|mb> <value> <unit>``. Targets: < 5 s and < 8 MB.
Per section (English run): seconds (including the analyses it computes) and MB of figures.

    python bench/report_bench.py            # 100,000 items
    python bench/report_bench.py --quick    # 10,000 items
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_bench import bench, build_warehouse  # noqa: E402

TARGET_SECONDS = 5.0
TARGET_MB = 8.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    args = parser.parse_args()
    items = args.items or (10_000 if args.quick else 100_000)
    bench("load_average_1min_at_start", os.getloadavg()[0], "")

    from pmolens.reports.steering import build_report
    from pmolens.warehouse.config import settings_from_dict
    from pmolens.warehouse.store import Warehouse

    tmp = Path(tempfile.mkdtemp(prefix="pmolens-report-bench-"))
    data, took = build_warehouse(tmp / "report.duckdb", items)
    bench("report_warehouse_items", items, "items")
    bench("report_warehouse_build_seconds", took, "s")
    settings = settings_from_dict(data)
    timings = _time_sections()
    met = True
    with Warehouse(settings.warehouse_path) as warehouse:
        for lang in ("en", "nl"):
            started = time.perf_counter()
            page = build_report(warehouse, settings, lang=lang, plotly="inline")
            seconds = time.perf_counter() - started
            size_mb = len(page.encode("utf-8")) / 1e6
            (tmp / f"steering-{lang}.html").write_text(page, encoding="utf-8")
            bench(f"report_{lang}_seconds", seconds, "s")
            bench(f"report_{lang}_mb", size_mb, "MB")
            met = met and seconds < TARGET_SECONDS and size_mb < TARGET_MB
            if lang == "en":  # where the time and the bytes go (analyses run inside sections)
                for key, (took, figure_bytes) in timings.items():
                    bench(f"report_section_{key}_seconds", took, "s")
                    bench(f"report_section_{key}_figures_mb", figure_bytes / 1e6, "MB")
    bench("report_target_met", float(met), "bool")
    bench("load_average_1min_at_end", os.getloadavg()[0], "")


def _time_sections() -> dict[str, tuple[float, int]]:
    """Wrap every section's ``build`` to record its time and the size of its figures."""
    from pmolens.reports.steering import SECTIONS

    timings: dict[str, tuple[float, int]] = {}
    for module in SECTIONS():
        key = module.__name__.rsplit(".", 1)[-1]

        def build(ctx, _build=module.build, _key=key):
            started = time.perf_counter()
            section = _build(ctx)
            size = sum(len(figure.spec()) for figure in section.figures)
            timings[_key] = (time.perf_counter() - started, size)
            return section

        module.build = build
    return timings


if __name__ == "__main__":
    main()
