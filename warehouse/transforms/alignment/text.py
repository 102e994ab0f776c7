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


# ------------------------------------------------------------------ message keys and parameters
# A finding's ``message`` is its English sentence; ``message_key`` names the same sentence in the
# report's catalogue (reports/finding_text.py, English and Dutch) and ``message_params`` holds
# its parameters as one JSON object, so a reader gets it in their own language with numbers and
# days written their way. Parameters are raw: numbers, ISO days ("2026-12-14"), labels
# ({"label": catalogue key, "text": English}) and lists ({"list": [...], "more": k}).


def params(**fields: pl.Expr) -> pl.Expr:
    """The sentence's parameters as one JSON object per row."""
    return pl.struct(*[e.alias(n) for n, e in fields.items()]).struct.json_encode()


def labelled(key: pl.Expr, text: pl.Expr) -> pl.Expr:
    """A parameter the reader's catalogue translates (``key``), ``text`` when it has no label."""
    return pl.struct(key.cast(pl.String).alias("label"), text.cast(pl.String).alias("text"))


def listed(col: str, n: int = 3) -> pl.Expr:
    """The first n entries of a list column and how many more (``join_list`` as a parameter)."""
    more = (pl.col(col).list.len().cast(pl.Int64) - n).clip(0, None)
    return pl.struct(pl.col(col).list.head(n).alias("list"), more.alias("more"))


def day_param(col: str | pl.Expr) -> pl.Expr:
    """A day as an ISO string ("?" when unknown, as in the English message)."""
    return fmt_date(col)
