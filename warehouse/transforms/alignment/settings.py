"""The settings in force: per rule and organisation (``[rules.<id>]``, typed in
warehouse/settings_analytics.py), and the rule catalogue built from them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pmolens.warehouse.settings_analytics import CustomRule, RuleSettings, RulesSettings
from pmolens.warehouse.transforms.alignment.contract import Rule, empty_hits
from pmolens.warehouse.transforms.alignment.rules import RULES


@dataclass(frozen=True)
class RuleSetting:
    enabled: bool
    thresholds: dict[str, Any]


@dataclass(frozen=True)
class ResolvedRule:
    rule: Rule
    base: RuleSetting
    organisations: dict[str, RuleSetting] = field(default_factory=dict)


Rules = RulesSettings | Mapping[str, Any] | None


CustomRules = Sequence[CustomRule | Mapping[str, Any]]


def resolve_rules(config: Rules, custom_ids: Iterable[str] = ()) -> dict[str, ResolvedRule]:
    """The settings in force, per rule and organisation, from the typed ``Settings.rules``
    (checked when the config loads). A plain mapping (tests, benchmarks) is parsed first, with
    the same ``ConfigError`` the config load gives. Custom rule ids take ``enabled`` only."""
    customs = sorted(set(custom_ids))
    rules = (
        config if isinstance(config, RulesSettings) else RulesSettings.from_mapping(config, customs)
    )
    resolved: dict[str, ResolvedRule] = {}
    for rule in [*RULES.values(), *(_custom_stub(i) for i in customs)]:
        settings: RuleSettings = rules.rule(rule.id)
        base = RuleSetting(settings.enabled, settings.thresholds())
        per_org = {
            str(org): RuleSetting(*settings.overridden(override))
            for org, override in settings.organisations.items()
        }
        resolved[rule.id] = ResolvedRule(rule, base, per_org)
    return resolved


def _custom_stub(rule_id: str) -> Rule:
    """A custom rule as the settings see it: no thresholds, only ``enabled``."""
    return Rule(rule_id, rule_id, "", "warning", "PMO", {}, lambda ctx, t: empty_hits())


def by_organisation(
    hits: pl.DataFrame, include: Sequence[str] | None, exclude: Sequence[str]
) -> pl.DataFrame:
    if include is not None:
        return hits.filter(pl.col("organisation").is_in(list(include)).fill_null(False))
    if exclude:
        return hits.filter(~pl.col("organisation").is_in(list(exclude)).fill_null(False))
    return hits


CATALOGUE_SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "title": pl.String,
    "rationale": pl.String,
    "severity": pl.String,
    "owner_role": pl.String,
    "custom": pl.Boolean,
    "enabled": pl.Boolean,
    "thresholds": pl.String,  # JSON of the thresholds in force
    "organisations": pl.String,  # JSON: per organisation, the settings that differ
    "sql": pl.String,  # custom rules only
}


def rule_catalogue(config: Rules = None, custom_rules: CustomRules = ()) -> pl.DataFrame:
    """The rules (built-in, then custom) with the settings in force (``CATALOGUE_SCHEMA``)."""
    customs = {c.id: c for c in CustomRule.list_from(custom_rules)}
    rows = []
    for rule_id, r in resolve_rules(config, customs).items():
        custom = customs.get(rule_id)
        orgs: dict[str, dict[str, Any]] = {}
        for org, setting in r.organisations.items():
            diff = {k: v for k, v in setting.thresholds.items() if r.base.thresholds.get(k) != v}
            if setting.enabled != r.base.enabled:
                diff["enabled"] = setting.enabled
            if diff:
                orgs[org] = diff
        rows.append(
            {
                "id": rule_id,
                "title": custom.title if custom else r.rule.title,
                "rationale": custom.rationale if custom else r.rule.rationale,
                "severity": custom.severity if custom else r.rule.severity,
                "owner_role": custom.owner_role if custom else r.rule.owner_role,
                "custom": custom is not None,
                "enabled": r.base.enabled,
                "thresholds": json.dumps(r.base.thresholds, sort_keys=True),
                "organisations": json.dumps(orgs, sort_keys=True),
                "sql": custom.sql if custom else None,
            }
        )
    return pl.DataFrame(rows, schema=CATALOGUE_SCHEMA)
