"""The findings contract: the columns every rule returns, ``Rule`` and the ``@rule``
declaration, and how a rule's hits become findings (defaults filled, one per key, ordered)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.settings_analytics import (
    FINDINGS_COLUMNS,
    OWNER_ROLES,
    SEVERITIES,
    RulesSettings,
)
from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.text import txt

#: How much one open finding of each severity costs its item's score (lifecycle.alignment_scores).
SEVERITY_WEIGHTS: dict[str, float] = {"info": 0.25, "warning": 0.5, "critical": 1.0}

#: The columns every finding has, built-in or custom (docs/alignment.md, *Findings*).
FINDINGS_SCHEMA: dict[str, Any] = {
    "rule": pl.String,
    "severity": pl.String,
    "item_id": pl.String,
    "key": pl.String,
    "url": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "owner_role": pl.String,
    "message": pl.String,  # the English sentence (kept for API and CSV users)
    "since": UTC_TS,
    # the same sentence as a catalogue key and its JSON parameters (alignment/text.py), rendered
    # in the reader's language by reports/finding_text.py; null for custom rules (their own text)
    "message_key": pl.String,
    "message_params": pl.String,
}
#: What a custom SQL rule returns: every column but the two message-key columns.
assert tuple(FINDINGS_SCHEMA)[: len(FINDINGS_COLUMNS)] == FINDINGS_COLUMNS
MESSAGE_COLUMNS = ("message", "since", "message_key", "message_params")
#: The columns that name the item a finding is about (null for team-level findings).
ITEM_COLUMNS = ("item_id", "key", "url", "team", "organisation")

RuleFn = Callable[[RuleContext, Mapping[str, Any]], pl.DataFrame]


@dataclass(frozen=True)
class Rule:
    """One check. ``fn(ctx, thresholds)`` returns findings rows (engine fills rule/defaults).
    ``defaults``: the thresholds of ``[rules.<id>]`` (warehouse/settings_analytics.py)."""

    id: str
    title: str
    rationale: str
    severity: str
    owner_role: str
    defaults: Mapping[str, Any]
    fn: RuleFn


def rule(
    id: str, title: str, rationale: str, severity: str, owner_role: str
) -> Callable[[RuleFn], Rule]:
    """Declare a built-in rule: the decorated function becomes the ``Rule`` with this id, title,
    rationale (the practice it protects), default severity and acting role. Its thresholds and
    their defaults are the fields of its settings model (``RulesSettings.<id>``), so they are
    typed and checked when the config loads. It runs once listed in ``rules.RULES``."""
    assert severity in SEVERITIES and owner_role in OWNER_ROLES
    defaults = RulesSettings().rule(id).thresholds()

    def declare(fn: RuleFn) -> Rule:
        return Rule(id, title, rationale, severity, owner_role, defaults, fn)

    return declare


def empty_hits() -> pl.DataFrame:
    """No hits: what a rule returns when nothing can fire (the engine fills the other columns)."""
    return pl.DataFrame(schema={c: FINDINGS_SCHEMA[c] for c in (*ITEM_COLUMNS, *MESSAGE_COLUMNS)})


def team_hits(
    frame: pl.DataFrame,
    message: pl.Expr,
    since: pl.Expr,
    message_key: pl.Expr | None = None,
    message_params: pl.Expr | None = None,
) -> pl.DataFrame:
    """Team-level findings: item_id, key and url are null."""
    return frame.select(
        pl.lit(None, pl.String).alias("item_id"),
        pl.lit(None, pl.String).alias("key"),
        pl.lit(None, pl.String).alias("url"),
        "team",
        "organisation",
        message.alias("message"),
        since.alias("since"),
        (pl.lit(None, pl.String) if message_key is None else message_key).alias("message_key"),
        (pl.lit(None, pl.String) if message_params is None else message_params).alias(
            "message_params"
        ),
    )


def key_expr() -> pl.Expr:
    """Identity of a finding within its rule: the item, or for team-level findings the team."""
    return pl.coalesce(
        pl.col("item_id"),
        pl.format("team:{}/{}", txt("organisation", ""), txt("team", "")),
    )


def finalise(rule_id: str, severity: str, owner_role: str, hits: pl.DataFrame) -> pl.DataFrame:
    """Hits -> FINDINGS_SCHEMA: the rule id, its defaults where a hit has no severity/owner."""
    cols = []
    for name, dtype in FINDINGS_SCHEMA.items():
        if name == "rule":
            cols.append(pl.lit(rule_id, pl.String).alias("rule"))
        elif name in ("severity", "owner_role"):
            default = severity if name == "severity" else owner_role
            allowed = SEVERITIES if name == "severity" else OWNER_ROLES
            got = pl.col(name).cast(pl.String) if name in hits.columns else pl.lit(None, pl.String)
            cols.append(
                pl.when(got.is_in(list(allowed))).then(got).otherwise(pl.lit(default)).alias(name)
            )
        elif name in hits.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype).alias(name))
    return hits.select(cols)


def severity_rank() -> pl.Expr:
    """0 for info up to 2 for critical; -1 for an unknown severity."""
    return pl.col("severity").replace_strict(
        {s: i for i, s in enumerate(SEVERITIES)}, default=-1, return_dtype=pl.Int8
    )


def order_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """One finding per (rule, item or team), most severe first, then rule, organisation, team."""
    return (
        findings.with_columns(severity_rank().alias("_rank"), key_expr().alias("_k"))
        .sort(
            ["_rank", "rule", "organisation", "team", "key", "_k"],
            descending=[True, False, False, False, False, False],
            nulls_last=True,
            maintain_order=True,
        )
        .unique(["rule", "_k"], keep="first", maintain_order=True)
        .drop("_rank", "_k")
    )
