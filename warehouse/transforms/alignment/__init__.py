"""Agile PMO alignment rules: a catalogue of checks over the warehouse frames, one engine, scores.

A *rule* is a pure function over the canonical frames (plus the dependency edges) that returns the
offending rows as *findings* with fixed columns (``FINDINGS_SCHEMA``); no rows means the rule
passes. Every rule has an id, a title, a rationale (the practice it protects), a default severity,
the role that should act, and thresholds. ``[rules.<id>]`` in pmolens.toml switches a rule off or
tunes its thresholds, globally or per organisation (``[rules.<id>.organisations.<org>]``); a
per-organisation setting applies to findings of that organisation. Organisations may add their own
rules as SQL over the canonical tables (``custom_rules``), checked at load time.

``update_findings`` keeps the findings table across syncs (first seen / last seen / resolved),
``alignment_scores`` turns findings into a 0-100 score per team or organisation.
Definitions of every rule: docs/alignment.md.

The modules, by concept:

- ``contract``: the findings columns, ``Rule`` and the ``@rule`` declaration, hits -> findings;
- ``context``: ``RuleContext``, the frames of one evaluation and what several rules share;
- ``rules/``: the built-in rules, one module per rule or small family; ``rules.RULES`` lists them;
- ``text``: the message helpers rules format their one-line messages with;
- ``settings``: the settings in force per rule and organisation, the rule catalogue;
- ``custom``: custom SQL rules;
- ``engine``: ``run_rule`` and ``evaluate`` (every enabled rule, built-in and custom);
- ``lifecycle``: findings across evaluations (new / open / resolved) and the scores.
"""

from __future__ import annotations

from pmolens.warehouse.settings_analytics import FINDINGS_COLUMNS, OWNER_ROLES, SEVERITIES
from pmolens.warehouse.transforms.alignment.context import MAX_DEPTH, RuleContext, utc
from pmolens.warehouse.transforms.alignment.contract import (
    FINDINGS_SCHEMA,
    SEVERITY_WEIGHTS,
    Rule,
    RuleFn,
    order_findings,
)
from pmolens.warehouse.transforms.alignment.custom import run_custom_rules
from pmolens.warehouse.transforms.alignment.engine import evaluate, run_rule
from pmolens.warehouse.transforms.alignment.lifecycle import (
    FINDINGS_STATE_SCHEMA,
    SCORE_KEYS,
    STATUSES,
    alignment_scores,
    daily_trend,
    score_scope,
    update_findings,
)
from pmolens.warehouse.transforms.alignment.rules import RULES
from pmolens.warehouse.transforms.alignment.rules.duplicate_effort import (
    STOP_WORDS,
    similar_title_sets,
    title_tokens,
    token_rows,
)
from pmolens.warehouse.transforms.alignment.settings import (
    CATALOGUE_SCHEMA,
    CustomRules,
    ResolvedRule,
    Rules,
    RuleSetting,
    resolve_rules,
    rule_catalogue,
)
from pmolens.warehouse.transforms.dependencies import EDGES_SCHEMA

__all__ = [
    "CATALOGUE_SCHEMA",
    "EDGES_SCHEMA",
    "FINDINGS_COLUMNS",
    "FINDINGS_SCHEMA",
    "FINDINGS_STATE_SCHEMA",
    "MAX_DEPTH",
    "OWNER_ROLES",
    "RULES",
    "SCORE_KEYS",
    "SEVERITIES",
    "SEVERITY_WEIGHTS",
    "STATUSES",
    "STOP_WORDS",
    "CustomRules",
    "ResolvedRule",
    "Rule",
    "RuleContext",
    "RuleFn",
    "RuleSetting",
    "Rules",
    "alignment_scores",
    "daily_trend",
    "evaluate",
    "order_findings",
    "resolve_rules",
    "rule_catalogue",
    "run_custom_rules",
    "run_rule",
    "score_scope",
    "similar_title_sets",
    "title_tokens",
    "token_rows",
    "update_findings",
    "utc",
]
