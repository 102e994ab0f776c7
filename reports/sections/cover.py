"""Executive summary: headline figures and how fresh each source's data is.

Every count is as of the report's moment: ``ctx.inputs`` holds the warehouse as known then
(``Inputs.known_at``), so "open" and "done" are the status categories of that day, and items
created later are not counted.
"""

from __future__ import annotations

import polars as pl

from pmolens.reports.blocks import ReportContext, Section, Table, nowrap
from pmolens.reports.i18n import moment


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    items = ctx.scoped(ctx.inputs.work_items)
    epics = items.filter(pl.col("level") == "epic")
    open_items = items.filter(pl.col("status_category") != "done")
    headline = [
        (t("organisations"), ctx.num(items["organisation"].n_unique())),
        (t("teams"), ctx.num(items["team"].drop_nulls().n_unique())),
        (t("epics"), ctx.num(epics.height)),
        (t("open_items"), ctx.num(open_items.height)),
        (t("done_items"), ctx.num(items.height - open_items.height)),
    ]
    fresh = ctx.scoped(ctx.freshness)
    rows = [
        [
            r["source"],
            r["kind"],
            r["organisation"],
            nowrap(moment(r["finished"], ctx.lang)) if r["finished"] else t("never"),
            t(f"outcome_{r['outcome']}") if r["outcome"] else t("never"),
            int(r["items"]),
        ]
        for r in fresh.iter_rows(named=True)
    ]
    columns = [t("source"), t("kind"), t("organisation"), t("last_sync"), t("outcome"), t("items")]
    return Section(
        key="summary",
        title=t("summary"),
        headline=headline,
        tables=[(t("freshness"), Table(columns, rows))],
    )
