"""Custom SQL rules (``[[custom_rules]]``): an organisation's own checks as SQL over the canonical
tables, checked when the config loads, run here into findings like the built-in rules'."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import duckdb
import polars as pl

from pmolens.warehouse.settings_analytics import (
    FINDINGS_COLUMNS,
    CustomRule,
    clean_sql,
    custom_connection,
)
from pmolens.warehouse.transforms.alignment.contract import (
    FINDINGS_SCHEMA,
    finalise,
    order_findings,
)
from pmolens.warehouse.transforms.alignment.settings import (
    CustomRules,
    ResolvedRule,
    Rules,
    by_organisation,
    resolve_rules,
)


def run_custom_rules(
    custom_rules: CustomRules,
    frames: Mapping[str, pl.DataFrame],
    config: Rules = None,
) -> pl.DataFrame:
    """Validate, then run the SQL rules over ``frames``; findings like ``evaluate``'s.

    ``rule`` is always the custom rule's id; a severity or owner_role that is null or not one
    of the allowed values takes the rule's. ``config`` (``Settings.rules``) may switch a custom
    rule off, globally or per organisation. A rule that fails at run time (a cast or division
    error in the data) yields one critical PMO finding saying so, instead of stopping the sync's
    analyses.
    """
    customs = CustomRule.list_from(custom_rules)
    return run_resolved_custom_rules(
        customs, frames, resolve_rules(config, [r.id for r in customs])
    )


def run_resolved_custom_rules(
    customs: Sequence[CustomRule],
    frames: Mapping[str, pl.DataFrame],
    resolved: Mapping[str, ResolvedRule],
) -> pl.DataFrame:
    parts = [pl.DataFrame(schema=FINDINGS_SCHEMA)]
    with custom_connection(frames) as con:
        for rule in customs:
            rule_id = rule.id
            setting = resolved[rule_id]
            off = sorted(o for o, s in setting.organisations.items() if not s.enabled)
            on = sorted(o for o, s in setting.organisations.items() if s.enabled)
            if not setting.base.enabled and not on:
                continue
            sql = clean_sql(rule.sql)
            cols = ", ".join(f'"{c}"' for c in FINDINGS_COLUMNS)
            try:
                hits = con.sql(f"SELECT {cols} FROM (\n{sql}\n) AS custom_rule").pl()
            except duckdb.Error as exc:
                parts.append(_failed(rule_id, str(exc)))
                continue
            if isinstance(hits["since"].dtype, pl.Datetime | pl.Date):
                since = hits["since"].cast(pl.Datetime("us"))  # naive: already UTC
                if isinstance(hits["since"].dtype, pl.Datetime) and hits["since"].dtype.time_zone:
                    since = hits["since"].dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                hits = hits.with_columns(since.dt.replace_time_zone("UTC").alias("since"))
            found = finalise(rule_id, rule.severity, rule.owner_role, hits)
            include = None if setting.base.enabled else on
            parts.append(by_organisation(found, include, off if setting.base.enabled else []))
    return order_findings(pl.concat(parts))


def _failed(rule_id: str, error: str) -> pl.DataFrame:
    first = error.splitlines()[0]
    return pl.DataFrame(
        [
            {
                "rule": rule_id,
                "severity": "critical",
                "owner_role": "PMO",
                "message": f"Custom rule {rule_id} failed on this data: {first} "
                "- fix its SQL in pmolens.toml",
                "message_key": "finding_custom_failed",
                "message_params": json.dumps({"rule": rule_id, "error": first}),
            }
        ],
        schema=FINDINGS_SCHEMA,
    )
