"""The sentences of the decisions list and of "what changed since", in Dutch and English.

The ``decisions`` and ``changes`` frames (warehouse/transforms/decisions.py) hold no prose: each
line names a catalogue key (``detail_key``) and its parameters (``detail_params``, a JSON
object). ``decision_sentence`` turns a line into the reader's language with the labels below, so
the steering report and the web app say exactly the same thing. A parameter that is itself
translated is ``{"label": key, "text": fallback}`` (a rule title, an impediment's reason);
a missing value reads as a dash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pmolens.reports.i18n import CATALOGUE, add_labels
from pmolens.reports.sections import alignment as _alignment  # noqa: F401  (rule titles, severities)
from pmolens.reports.sections import impediments as _impediments  # noqa: F401  (reasons)
from pmolens.reports.sentence import DASH, Translate, sentence, who_acts

__all__ = ["DASH", "change_sentence", "decision_sentence", "kind_label", "sentence", "who_acts"]

add_labels(
    {
        "decision_title": {
            "en": "What needs a decision today",
            "nl": "Wat vandaag een besluit vraagt",
        },
        "decision_lead": {
            "en": "Red lines that move a date, epics past or unlikely to make their target date, "
            "impediments at or about to reach the Executive Action Team, dependencies between "
            "organisations at risk and new critical findings: each with who acts and since when.",
            "nl": "Rode lijnen die een datum verschuiven, epics over of onwaarschijnlijk op hun "
            "streefdatum, impediments bij of bijna bij het Executive Action Team, afhankelijkheden "
            "tussen organisaties met risico en nieuwe kritieke bevindingen: elk met actiehouder "
            "en sinds wanneer.",
        },
        "decision_table": {
            "en": "Decisions, most urgent first",
            "nl": "Besluiten, meest dringende eerst",
        },
        "decision_total": {"en": "Decisions", "nl": "Besluiten"},
        "decision_what": {"en": "What", "nl": "Wat"},
        "decision_item": {"en": "Item", "nl": "Item"},
        "decision_other_item": {"en": "Blocking item", "nl": "Blokkerend item"},
        "decision_team_org": {"en": "Team · organisation", "nl": "Team · organisatie"},
        "decision_who_acts": {"en": "Who acts", "nl": "Actiehouder"},
        "decision_since": {"en": "Since", "nl": "Sinds"},
        "decision_due": {"en": "Due", "nl": "Uiterlijk"},
        # the kinds (headline counters)
        "decision_kind_red_line": {
            "en": "Red lines that move a date",
            "nl": "Rode lijnen die een datum verschuiven",
        },
        "decision_kind_epic_overdue": {
            "en": "Epics past their target date",
            "nl": "Epics over de streefdatum",
        },
        "decision_kind_epic_below_target_chance": {
            "en": "Epics below 50% chance of their target date",
            "nl": "Epics onder 50% kans op de streefdatum",
        },
        "decision_kind_impediment_eat": {
            "en": "Impediments at the Executive Action Team",
            "nl": "Impediments bij het Executive Action Team",
        },
        "decision_kind_impediment_escalating": {
            "en": "Impediments about to reach the Executive Action Team",
            "nl": "Impediments die bijna naar het Executive Action Team gaan",
        },
        "decision_kind_cross_org_at_risk": {
            "en": "Dependencies between organisations at risk",
            "nl": "Afhankelijkheden tussen organisaties met risico",
        },
        "decision_kind_critical_finding": {
            "en": "New critical findings",
            "nl": "Nieuwe kritieke bevindingen",
        },
        # the sentences (parameters in braces; docs/decisions.md)
        "decision_red_line_conflict": {
            "en": "{key} ({team}) is planned {slip_days} days before {other_key} ({other_team}), "
            "which it waits on: re-plan one of the two",
            "nl": "{key} ({team}) staat {slip_days} dagen eerder gepland dan {other_key} "
            "({other_team}), waar het op wacht: herplan één van beide",
        },
        "decision_red_line_unscheduled_blocker": {
            "en": "{key} ({team}) waits on {other_key} ({other_team}), which is not planned; "
            "waiting on blockers moves epic {epic_key} {delay_days} days (P85): get the blocker "
            "planned",
            "nl": "{key} ({team}) wacht op {other_key} ({other_team}), dat niet gepland is; door "
            "het wachten schuift epic {epic_key} {delay_days} dagen op (P85): laat het "
            "blokkerende item inplannen",
        },
        "decision_red_line_at_risk": {
            "en": "{key} ({team}) and {other_key} ({other_team}), which it waits on, are planned "
            "to finish in the same sprint or on the same day; waiting on blockers moves epic "
            "{epic_key} {delay_days} days (P85): agree the order",
            "nl": "{key} ({team}) en {other_key} ({other_team}), waar het op wacht, staan in "
            "dezelfde sprint of op dezelfde dag gepland; door het wachten schuift epic {epic_key} "
            "{delay_days} dagen op (P85): spreek de volgorde af",
        },
        "decision_epic_overdue": {
            "en": "Epic {key} is {days_overdue} days past its target date {target_date}; "
            "forecast (P85): {p85}. Set a new date or cut scope",
            "nl": "Epic {key} is {days_overdue} dagen over de streefdatum {target_date}; "
            "prognose (P85): {p85}. Stel een nieuwe datum vast of verklein de scope",
        },
        "decision_epic_overdue_driven": {
            "en": "Epic {key} is {days_overdue} days past its target date {target_date}; "
            "forecast (P85): {p85}, {delay_days} days of it waiting on {other_key}. Set a new "
            "date or cut scope",
            "nl": "Epic {key} is {days_overdue} dagen over de streefdatum {target_date}; "
            "prognose (P85): {p85}, waarvan {delay_days} dagen wachten op {other_key}. Stel een "
            "nieuwe datum vast of verklein de scope",
        },
        "decision_epic_below_target_chance": {
            "en": "Epic {key} has a {p_on_time_pct}% chance of its target date {target_date}; "
            "forecast (P85): {p85}. Re-plan, cut scope or move the date",
            "nl": "Epic {key} heeft {p_on_time_pct}% kans op de streefdatum {target_date}; "
            "prognose (P85): {p85}. Herplan, verklein de scope of verschuif de datum",
        },
        "decision_epic_below_target_chance_driven": {
            "en": "Epic {key} has a {p_on_time_pct}% chance of its target date {target_date}; "
            "forecast (P85): {p85}, {delay_days} days of it waiting on {other_key}. Re-plan, "
            "cut scope or move the date",
            "nl": "Epic {key} heeft {p_on_time_pct}% kans op de streefdatum {target_date}; "
            "prognose (P85): {p85}, waarvan {delay_days} dagen wachten op {other_key}. Herplan, "
            "verklein de scope of verschuif de datum",
        },
        "decision_beyond_horizon": {
            "en": "beyond the forecast horizon",
            "nl": "voorbij de prognosehorizon",
        },
        "decision_impediment_eat": {
            "en": "{key} ({reason}) has stopped work for {age_days} days and holds up "
            "{held_up_items} items (weight {weight}): with the Executive Action Team",
            "nl": "{key} ({reason}) houdt het werk al {age_days} dagen tegen en houdt "
            "{held_up_items} items op (gewicht {weight}): ligt bij het Executive Action Team",
        },
        "decision_impediment_eat_alone": {
            "en": "{key} ({reason}) has stopped work for {age_days} days: with the Executive "
            "Action Team",
            "nl": "{key} ({reason}) houdt het werk al {age_days} dagen tegen: ligt bij het "
            "Executive Action Team",
        },
        "decision_impediment_escalating": {
            "en": "{key} ({reason}) has stopped work for {age_days} days and reaches the "
            "Executive Action Team on {due} (after {threshold_days} days): remove it in the "
            "Scrum of Scrums or prepare the escalation",
            "nl": "{key} ({reason}) houdt het werk al {age_days} dagen tegen en gaat op {due} "
            "naar het Executive Action Team (na {threshold_days} dagen): los het op in de Scrum "
            "of Scrums of bereid de escalatie voor",
        },
        "decision_cross_org_unscheduled_blocker": {
            "en": "{key} ({organisation}) waits on {other_key} of {other_organisation}, which is "
            "not planned: agree a date with the partner",
            "nl": "{key} ({organisation}) wacht op {other_key} van {other_organisation}, dat niet "
            "gepland is: spreek een datum af met de partner",
        },
        "decision_cross_org_at_risk": {
            "en": "{key} ({organisation}) and {other_key} of {other_organisation}, which it "
            "waits on, are planned to finish in the same sprint or on the same day: agree the "
            "order with the partner",
            "nl": "{key} ({organisation}) en {other_key} van {other_organisation}, waar het op "
            "wacht, staan in dezelfde sprint of op dezelfde dag gepland: spreek de volgorde af "
            "met de partner",
        },
        "decision_cross_org_conflict": {
            "en": "{key} ({organisation}) is planned {slip_days} days before {other_key} of "
            "{other_organisation}, which it waits on: re-plan one of the two with the partner",
            "nl": "{key} ({organisation}) staat {slip_days} dagen eerder gepland dan {other_key} "
            "van {other_organisation}, waar het op wacht: herplan één van beide met de partner",
        },
        "decision_critical_finding": {
            "en": "New critical finding: {rule} ({subject})",
            "nl": "Nieuwe kritieke bevinding: {rule} ({subject})",
        },
        # what changed since
        "change_title": {
            "en": "What changed since {since}",
            "nl": "Wat is er veranderd sinds {since}",
        },
        "change_kind_red_line_new": {"en": "New red lines", "nl": "Nieuwe rode lijnen"},
        "change_kind_epic_p85_moved": {
            "en": "Epics whose P85 moved more than a week",
            "nl": "Epics waarvan de P85 meer dan een week verschoof",
        },
        "change_kind_finding_new": {"en": "New findings", "nl": "Nieuwe bevindingen"},
        "change_kind_finding_resolved": {"en": "Solved findings", "nl": "Opgeloste bevindingen"},
        "change_kind_red_line_gone": {"en": "Red lines gone", "nl": "Verdwenen rode lijnen"},
        "change_finding_new": {
            "en": "New finding ({severity}): {rule} ({subject})",
            "nl": "Nieuwe bevinding ({severity}): {rule} ({subject})",
        },
        "change_finding_resolved": {
            "en": "Solved ({severity}): {rule} ({subject})",
            "nl": "Opgelost ({severity}): {rule} ({subject})",
        },
        "change_epic_p85_later": {
            "en": "Epic {key}: P85 moved {days} days later, from {old_p85} to {new_p85}",
            "nl": "Epic {key}: P85 {days} dagen later, van {old_p85} naar {new_p85}",
        },
        "change_epic_p85_earlier": {
            "en": "Epic {key}: P85 moved {days} days earlier, from {old_p85} to {new_p85}",
            "nl": "Epic {key}: P85 {days} dagen eerder, van {old_p85} naar {new_p85}",
        },
        "change_red_line_new": {
            "en": "New red line ({timing}): {key} ({team}) waits on {other_key} ({other_team})",
            "nl": "Nieuwe rode lijn ({timing}): {key} ({team}) wacht op {other_key} ({other_team})",
        },
        "change_red_line_gone": {
            "en": "No longer a red line: {key} ({team}) waiting on {other_key} ({other_team})",
            "nl": "Geen rode lijn meer: {key} ({team}) dat wacht op {other_key} ({other_team})",
        },
        "decision_timing_conflict": {"en": "conflict", "nl": "conflict"},
        "decision_timing_unscheduled_blocker": {
            "en": "blocker not planned",
            "nl": "blokkerend item niet gepland",
        },
        "decision_timing_at_risk": {
            "en": "same sprint or end date",
            "nl": "zelfde sprint of einddatum",
        },
    }
)


def decision_sentence(row: Mapping[str, Any], t: Translate) -> str:
    """What one line of ``decisions`` asks, as a sentence in ``t``'s language:
    ``row`` needs ``detail_key`` and ``detail_params`` (as the frame, the API and CSV give them).
    """
    return sentence(str(row["detail_key"]), row.get("detail_params"), t)


def change_sentence(row: Mapping[str, Any], t: Translate) -> str:
    """What one line of ``changes_since`` says, as a sentence in ``t``'s language (the same
    mechanics as ``decision_sentence``: ``detail_key`` and ``detail_params``)."""
    return sentence(str(row["detail_key"]), row.get("detail_params"), t)


def kind_label(kind: str, t: Translate) -> str:
    """A decision kind (or a change kind) as a headline label."""
    prefix = "change_kind_" if f"change_kind_{kind}" in CATALOGUE else "decision_kind_"
    return t(prefix + kind)
