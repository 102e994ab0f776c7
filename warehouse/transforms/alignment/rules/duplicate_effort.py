"""Duplicate effort: near-identical titles in different teams, by title tokens and prefix-filtered
Jaccard similarity (no all-pairs comparison)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, empty_hits, rule
from pmolens.warehouse.transforms.alignment.text import label, params, short, txt

_STOP_TEXT = (
    # English
    "a an the and or but if then else of at by for with about against between into through "
    "during before after above below to from up down in out on off over under again further once "
    "here there when where why how all any both each few more most other some such no nor not "
    "only own same so than too very can will just should now is are was were be been being have "
    "has had having do does did doing i me my we our you your he him his she her it its they them "
    "their what which who whom this that these those as until while via per am also "
    # Dutch
    "de het een en of maar van in op te voor met aan bij door naar om uit tot over als dan dat die "
    "dit deze er is zijn was waren wordt worden werd kan kunnen moet moeten niet geen ook nog al "
    "wel zo toe tegen onder na zonder ik je jij u hij zij ze we wij jullie hun hen haar mijn uw "
    "ons onze wat wie welke waar hoe hebben heeft had"
)
STOP_WORDS: frozenset[str] = frozenset(_STOP_TEXT.split())


def title_tokens(titles: pl.DataFrame, id_col: str = "item_id") -> pl.DataFrame:
    """(id, token) rows: the normalised token set of each title, vectorised over all titles.

    Lowercase; everything but letters and digits separates words; one-letter words and stop
    words (English and Dutch) dropped; a trailing plural "s" stripped from words of more than 3 letters (not "ss").
    """
    return token_rows(titles, id_col).unique()


def token_rows(titles: pl.DataFrame, id_col: str = "item_id") -> pl.DataFrame:
    """``title_tokens`` before de-duplication (a title may repeat a token): a caller that groups
    per id anyway de-duplicates per group, cheaper than one unique over every row."""
    token = pl.col("token")
    return (
        titles.select(
            id_col,
            pl.col("title")
            .fill_null("")
            .str.to_lowercase()
            .str.replace_all(r"[^\p{L}\p{N}]+", " ")
            .str.strip_chars()
            .str.split(" ")
            .alias("token"),
        )
        .explode("token")
        .filter((token.str.len_chars() > 1) & ~token.is_in(list(STOP_WORDS)))
        .with_columns(
            pl.when(
                (token.str.len_chars() > 3) & token.str.ends_with("s") & ~token.str.ends_with("ss")
            )
            .then(token.str.slice(0, token.str.len_chars() - 1))
            .otherwise(token)
        )
    )


def similar_title_sets(
    tokens: pl.DataFrame,
    min_jaccard: float,
    min_tokens: int,
    max_block: int,
    id_col: str = "item_id",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Group identical token sets, then find similar pairs of sets by prefix filtering.

    ``tokens``: (id, token) rows; a token repeated for one id counts once (an integer id, such as
    a row number, groups fastest). Returns (sets: id -> set_id, pairs: set_a, set_b, jaccard with
    a != b, both directions); set ids number the distinct sets in the order of their sorted tokens.
    Tokens are ordered rarest first; two sets with Jaccard >= t must share one of the first
    n - ceil(t n) + 1 tokens of each (prefix filtering), so only sets that share a prefix token
    are compared, and only when their sizes allow t. Exact Jaccard is computed for those
    candidates only. A prefix token shared by more than ``max_block`` sets is skipped (such a
    token is common to so many titles that it cannot be a rarest token of near-duplicates).
    """
    eps = 1e-9
    new_sig = (pl.col("_sig") != pl.col("_sig").shift()).fill_null(True)
    per_item = (
        tokens.group_by(id_col)
        .agg(pl.col("token").unique().sort().alias("_toks"))
        .with_columns(pl.col("_toks").list.len().alias("_n"))
        .filter(pl.col("_n") >= min_tokens)
        .with_columns(pl.col("_toks").list.join("\x1f").alias("_sig"))
        .sort("_sig")  # identical sets are one run; a run's number is its set id
        .with_columns((new_sig.cum_sum() - 1).cast(pl.Int64).alias("set_id"))
    )
    sets = per_item.filter(new_sig).select("set_id", "_toks", "_n")
    item_sets = per_item.select(id_col, "set_id")
    exploded = sets.select("set_id", "_n", pl.col("_toks").alias("token")).explode("token")
    # rarest first: document frequency, ties in token order (a set's tokens are sorted already,
    # and the stable sort keeps that order)
    freq = exploded.group_by("token").len().rename({"len": "_df"})
    ranked = exploded.join(freq, on="token", how="inner", maintain_order="left").sort(
        "set_id", "_df", maintain_order=True
    )
    # position within its set: every set is one run of _n rows (its tokens are unique)
    sizes = sets["_n"].to_numpy().astype(np.int64)
    position = np.arange(ranked.height) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    prefix = (
        ranked.with_columns(pl.Series("_pos", position))
        .filter(
            pl.col("_pos")
            < pl.col("_n") - (pl.col("_n") * min_jaccard - eps).ceil().cast(pl.Int64) + 1
        )
        .filter(pl.col("_df") <= max_block)
        .select("set_id", "token", "_n")
    )
    cand = (
        prefix.join(prefix, on="token", how="inner", suffix="_b")
        .filter(pl.col("set_id") < pl.col("set_id_b"))
        .filter(
            (pl.col("_n_b") >= pl.col("_n") * min_jaccard - eps)
            & (pl.col("_n") >= pl.col("_n_b") * min_jaccard - eps)
        )
        .select(pl.col("set_id").alias("set_a"), pl.col("set_id_b").alias("set_b"))
        .unique()
    )
    toks = sets.select("set_id", "_toks", "_n")
    pairs = (
        cand.join(toks.rename({"set_id": "set_a"}), on="set_a", how="inner")
        .join(toks.rename({"set_id": "set_b"}), on="set_b", how="inner", suffix="_b")
        .with_columns(pl.col("_toks").list.set_intersection("_toks_b").list.len().alias("_i"))
        .with_columns(
            (pl.col("_i") / (pl.col("_n") + pl.col("_n_b") - pl.col("_i"))).alias("jaccard")
        )
        .filter(pl.col("jaccard") >= min_jaccard - eps)
        .select("set_a", "set_b", "jaccard")
    )
    both = pl.concat(
        [
            pairs,
            pairs.select(pl.col("set_b").alias("set_a"), pl.col("set_a").alias("set_b"), "jaccard"),
        ]
    )
    return item_sets, both


@rule(
    "duplicate_effort",
    "Near-identical work in different teams",
    "Chain and portfolio efficiency: two teams (or two organisations) building the same thing "
    "waste capacity; agree who does it and link the items.",
    "warning",
    "Chief PO",
)
def duplicate_effort(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open items whose title tokens are near-identical (Jaccard >= ``min_jaccard``) to an item
    of the same level in another team or organisation. Why: two teams building the same thing
    waste capacity. Who acts: the Chief PO, the PMO across organisations."""
    scope = ctx.items.filter(pl.col("_open") & pl.col("level").is_in(list(t["levels"])))
    if scope.height < 2:
        return empty_hits()
    scope = scope.select(
        "item_id", "key", "title", "level", "team", "organisation", "created", "url", "_type"
    ).with_row_index("_row")
    item_sets, pairs = similar_title_sets(
        token_rows(scope.select("_row", "title"), "_row"),
        float(t["min_jaccard"]),
        int(t["min_tokens"]),
        int(t["max_block"]),
        id_col="_row",
    )
    members = (
        scope.join(item_sets, on="_row", how="inner", maintain_order="left")
        .drop("_row")
        .with_columns(pl.len().over("set_id").alias("_size"))
        .filter(pl.col("_size") <= t["max_group"])
        # an item alone with its token set and in no similar pair has no partner: drop it early
        .filter((pl.col("_size") > 1) | pl.col("set_id").is_in(pairs["set_a"].implode()))
        .with_columns(
            pl.col("team").fill_null("").alias("_t"),
            pl.col("organisation").fill_null("").alias("_o"),
        )
    )
    gkeys = ["set_id", "level", "_t", "_o"]
    groups = (
        members.sort("key", "item_id")
        .group_by(gkeys)
        .agg(
            pl.len().alias("_count"),
            pl.col("key", "title", "team", "organisation", "created", "item_id")
            .first()
            .name.prefix("p_"),
        )
    )
    self_pairs = groups.select(
        pl.col("set_id").alias("set_a"),
        pl.col("set_id").alias("set_b"),
        pl.lit(1.0).alias("jaccard"),
    ).unique()
    links = pl.concat([self_pairs, pairs]).unique(["set_a", "set_b"])
    partners = (
        groups.select(*gkeys)
        .join(links, left_on="set_id", right_on="set_a", how="inner")
        .join(
            groups.rename({"set_id": "set_b", "_t": "_t_b", "_o": "_o_b"}),
            on=["set_b", "level"],
            how="inner",
        )
        .filter((pl.col("_t") != pl.col("_t_b")) | (pl.col("_o") != pl.col("_o_b")))
        .sort(["jaccard", "p_key"], descending=[True, False])
        .group_by(gkeys, maintain_order=True)
        .agg(
            pl.all().exclude("set_b", "_t_b", "_o_b", "_count").first(),
            pl.col("_count").sum().alias("_others"),
            (pl.col("_o") != pl.col("_o_b")).any().alias("_cross_org"),
        )
    )
    hits = members.join(partners, on=gkeys, how="inner")
    more = (
        pl.when(pl.col("_others") > 1)
        .then(pl.format(" and {} more similar items", pl.col("_others") - 1))
        .otherwise(pl.lit(""))
    )
    return hits.select(
        *ITEM_COLUMNS,
        pl.format(
            "{} {} looks like {} '{}' of team {} ({}) (title similarity {}){}: agree who does it "
            "and link the items",
            "_type",
            label(),
            txt("p_key"),
            short("p_title"),
            txt("p_team"),
            txt("p_organisation"),
            # as the sentence writes the parameter (Python's "g": 1.0 -> "1")
            pl.col("jaccard").round(2).cast(pl.String).str.replace(r"\.0$", ""),
            more,
        ).alias("message"),
        pl.max_horizontal("created", "p_created").alias("since"),
        pl.when(pl.col("_others") > 1)
        .then(pl.lit("finding_duplicate_effort_more"))
        .otherwise(pl.lit("finding_duplicate_effort"))
        .alias("message_key"),
        params(
            type=pl.col("_type"),
            item=label(),
            other_key=txt("p_key"),
            other_title=short("p_title"),
            other_team=txt("p_team"),
            other_organisation=txt("p_organisation"),
            similarity=pl.col("jaccard").round(2),
            more=pl.col("_others") - 1,
        ).alias("message_params"),
        pl.when(pl.col("_cross_org"))
        .then(pl.lit("PMO"))
        .otherwise(pl.lit("Chief PO"))
        .alias("owner_role"),
    )
