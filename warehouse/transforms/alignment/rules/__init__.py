"""The built-in alignment rules, one module per rule or small family of rules.

A new rule: a module here with a function declared by ``@rule(...)`` (contract.py) whose
docstring says what fires, why it matters and who acts; its settings model in
warehouse/settings_analytics.py (``RulesSettings.<id>``); one line in ``RULES`` below; its section
in docs/alignment.md. ``RULES`` is the catalogue order (``/alignment/rules``, the report).
"""

from __future__ import annotations

from pmolens.warehouse.transforms.alignment.contract import Rule
from pmolens.warehouse.transforms.alignment.rules import (
    cadence,
    dependencies,
    dod_drift,
    duplicate_effort,
    epics,
    sprint_work,
    stale_work,
    structure,
    wip_overload,
)

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        structure.orphan_work,
        structure.epic_without_strategic_parent,
        structure.no_owner,
        sprint_work.unestimated_committed,
        dependencies.priority_inversion,
        dependencies.dependency_timing_conflict,
        cadence.sprint_cadence_misalignment,
        dod_drift.dod_drift,
        stale_work.stale_work,
        epics.done_but_open,
        epics.epic_spread,
        wip_overload.wip_overload,
        duplicate_effort.duplicate_effort,
        sprint_work.unassigned_in_active_sprint,
    )
}
