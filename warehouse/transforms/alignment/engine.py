"""The engine: one rule with its settings (``run_rule``), every enabled rule (``evaluate``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from pmolens.warehouse.settings_analytics import CustomRule
from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.contract import (
    FINDINGS_SCHEMA,
    finalise,
    order_findings,
)
from pmolens.warehouse.transforms.alignment.custom import run_resolved_custom_rules
from pmolens.warehouse.transforms.alignment.rules import RULES
from pmolens.warehouse.transforms.alignment.settings import (
    CustomRules,
    ResolvedRule,
    Rules,
    by_organisation,
    resolve_rules,
)


def run_rule(resolved: ResolvedRule, ctx: RuleContext) -> pl.DataFrame:
    """One rule with its settings: one run per distinct set of thresholds in force, each keeping
    the findings of the organisations those thresholds apply to."""
    rule, base = resolved.rule, resolved.base
    differing = {o: s for o, s in resolved.organisations.items() if s != base}
    runs: list[tuple[dict[str, Any], list[str] | None, list[str]]] = []
    if base.enabled:
        runs.append((base.thresholds, None, sorted(differing)))
    grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for org, setting in differing.items():
        if setting.enabled:
            sig = json.dumps(setting.thresholds, sort_keys=True, default=str)
            grouped.setdefault(sig, (setting.thresholds, []))[1].append(org)
    runs += [(thresholds, orgs, []) for thresholds, orgs in grouped.values()]
    parts = [
        by_organisation(
            finalise(rule.id, rule.severity, rule.owner_role, rule.fn(ctx, thresholds)),
            include,
            exclude,
        )
        for thresholds, include, exclude in runs
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=FINDINGS_SCHEMA)


def evaluate(
    frames: Mapping[str, pl.DataFrame],
    edges: pl.DataFrame | None,
    as_of: datetime,
    config: Rules = None,
    custom_rules: CustomRules = (),
) -> pl.DataFrame:
    """Run every enabled rule, built-in and custom; findings (``FINDINGS_SCHEMA``), most severe
    first.

    ``frames``: the canonical frames (work_items, sprints, status_changes, teams, ...);
    ``edges``: the dependency_edges frame; ``config``: ``Settings.rules``; ``custom_rules``:
    ``Settings.custom_rules``.
    """
    customs = CustomRule.list_from(custom_rules)
    resolved = resolve_rules(config, [r.id for r in customs])
    ctx = RuleContext(frames, edges, as_of)
    parts = [run_rule(r, ctx) for r in resolved.values() if r.rule.id in RULES]
    if customs:
        parts.append(run_resolved_custom_rules(customs, frames, resolved))
    return order_findings(pl.concat(parts))
