"""forecast section (to be filled in)."""

from __future__ import annotations

from reports.steering import ReportContext, Section


def build(ctx: ReportContext) -> Section:
    return Section(key="forecast", title="forecast")
