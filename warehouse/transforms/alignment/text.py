"""Message helpers: the pieces of the one-line messages rules write (labels, dates, numbers, lists)."""

from __future__ import annotations

import polars as pl


def short(col: str = "title", n: int = 60) -> pl.Expr:
    text = pl.col(col).fill_null("").str.strip_chars()
    return pl.when(text.str.len_chars() > n).then(text.str.slice(0, n - 3) + "...").otherwise(text)


def label(key: str = "key", title: str = "title", item_id: str = "item_id") -> pl.Expr:
    """``ABC-1 'Title'``: what a steering meeting recognises."""
    return pl.format("{} '{}'", pl.coalesce(key, item_id, pl.lit("?")), short(title))


def fmt_date(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.dt.strftime("%Y-%m-%d").fill_null("?")


def txt(col: str | pl.Expr, missing: str = "?") -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.String).fill_null(missing)


def num(expr: pl.Expr) -> pl.Expr:
    """Integer-looking floats without the trailing .0, one decimal otherwise."""
    rounded = expr.round(1)
    return (
        pl.when(rounded == rounded.floor())
        .then(rounded.cast(pl.Int64).cast(pl.String))
        .otherwise(rounded.cast(pl.String))
    )


def join_list(col: str, n: int = 3) -> pl.Expr:
    """First n entries of a list column joined by ', ', plus 'and k more'."""
    more = pl.col(col).list.len().cast(pl.Int64) - n  # list.len() is unsigned
    head = pl.col(col).list.head(n).list.join(", ")
    return pl.when(more > 0).then(pl.format("{} and {} more", head, more)).otherwise(head)
