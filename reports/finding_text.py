"""The sentences of the alignment findings, in English and Dutch.

A finding keeps its English sentence in ``message`` (for API and CSV users) and the same sentence
as a catalogue key (``message_key``) with its parameters (``message_params``, JSON), written by
the rules (warehouse/transforms/alignment/rules, helpers in alignment/text.py).
``finding_sentence`` renders it in the reader's language with the mechanics of the decisions
(reports/decision_text.py ``sentence``): numbers and days as the reader writes them. The English
templates give exactly ``message`` when rendered without a language (a test holds them to it).
A custom rule's finding has no key: its own text is shown as written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pmolens.reports.i18n import add_labels
from pmolens.reports.sentence import sentence

Translate = Callable[[str], str]

add_labels(
    {
        "finding_orphan_work": {
            "en": "{type} {item} has no path up to an epic or initiative: link it to the epic it "
            "serves or stop it",
            "nl": "{type} {item} hangt onder geen epic of initiatief: koppel het aan de epic "
            "die het dient of stop ermee",
        },
        "finding_epic_without_strategic_parent": {
            "en": "Epic {item} is not under an initiative, while {organisation} steers with "
            "initiatives: link it to the initiative it serves",
            "nl": "Epic {item} valt onder geen initiatief, terwijl {organisation} met "
            "initiatieven stuurt: koppel de epic aan het initiatief dat hij dient",
        },
        "finding_no_owner": {
            "en": "{type} {item} has no assignee: name an owner",
            "nl": "{type} {item} is aan niemand toegewezen: wijs een eigenaar aan",
        },
        "finding_done_but_open_closed": {
            "en": "Epic {item} is closed but {open} of its {items} items are still open ({keys}): "
            "reopen the epic or close or move the items",
            "nl": "Epic {item} is gesloten, maar {open} van zijn {items} items staan nog open "
            "({keys}): heropen de epic of sluit of verplaats de items",
        },
        "finding_done_but_open_finished": {
            "en": "Epic {item} is still open although all {items} of its items are done: close it "
            "or add the remaining work",
            "nl": "Epic {item} staat nog open, terwijl alle {items} items gereed zijn: sluit de "
            "epic of voeg het resterende werk toe",
        },
        "finding_epic_spread": {
            "en": "Epic {item} has open work in {teams} teams ({names}), more than {max_teams}: "
            "slice it along team lines or name one lead team",
            "nl": "Epic {item} heeft open werk bij {teams} teams ({names}), meer dan {max_teams}: "
            "deel de epic per team op of wijs één leidend team aan",
        },
        "finding_unestimated_committed": {
            "en": "{type} {item} is in {state} sprint '{sprint}' without an estimate: estimate it "
            "in refinement",
            "nl": "{type} {item} staat in {state} sprint '{sprint}' zonder schatting: schat het "
            "in de refinement",
        },
        "finding_sprint_active": {"en": "active", "nl": "de lopende"},
        "finding_sprint_future": {"en": "future", "nl": "de komende"},
        "finding_sprint_closed": {"en": "closed", "nl": "de afgesloten"},
        "finding_unassigned_in_active_sprint": {
            "en": "{type} {item} is {category} in active sprint '{sprint}' without an assignee: "
            "someone should pick it up",
            "nl": "{type} {item} is {category} in de lopende sprint '{sprint}' en aan niemand "
            "toegewezen: iemand moet het oppakken",
        },
        "finding_category_todo": {"en": "todo", "nl": "nog niet begonnen"},
        "finding_category_in_progress": {"en": "in progress", "nl": "onderhanden"},
        "finding_stale_work": {
            "en": "{type} {item} has been in progress without an update for {days} days (since "
            "{last}): unblock it, finish it or put it back",
            "nl": "{type} {item} is al {days} dagen onderhanden zonder wijziging (sinds {last}): "
            "maak het los, maak het af of zet het terug",
        },
        "finding_stale_epic_untouched": {
            "en": "Epic {item} is open and none of its items has changed status in the {days} "
            "days since it was created: decide to start, re-plan or stop it",
            "nl": "Epic {item} staat open en geen van zijn items is van status veranderd in de "
            "{days} dagen sinds de epic is aangemaakt: besluit te starten, te herplannen of te "
            "stoppen",
        },
        "finding_stale_epic": {
            "en": "Epic {item} has had no status change in any of its items for {days} days (last "
            "{last}): it has stalled; re-plan or stop it",
            "nl": "Bij epic {item} is al {days} dagen geen item van status veranderd (laatst "
            "{last}): de epic staat stil; herplan of stop hem",
        },
        "finding_wip_overload_limit": {
            "en": "Team {team} has {wip} items in progress, above its WIP limit of {limit}: stop "
            "starting, finish work first",
            "nl": "Team {team} heeft {wip} items onderhanden, boven zijn WIP-limiet van {limit}: "
            "stop met starten, maak eerst werk af",
        },
        "finding_wip_overload_usual": {
            "en": "Team {team} has {wip} items in progress, above its usual level ({percentile}th "
            "percentile of daily WIP over the last {days} days: {usual}): stop starting, finish "
            "work first",
            "nl": "Team {team} heeft {wip} items onderhanden, boven zijn gebruikelijke niveau "
            "({percentile}e percentiel van het dagelijkse onderhanden werk over de laatste {days} "
            "dagen: {usual}): stop met starten, maak eerst werk af",
        },
        "finding_wip_overload_both": {
            "en": "Team {team} has {wip} items in progress, above its WIP limit of {limit} and its "
            "usual level ({percentile}th percentile of daily WIP over the last {days} days: "
            "{usual}): stop starting, finish work first",
            "nl": "Team {team} heeft {wip} items onderhanden, boven zijn WIP-limiet van {limit} "
            "en zijn gebruikelijke niveau ({percentile}e percentiel van het dagelijkse "
            "onderhanden werk over de laatste {days} dagen: {usual}): stop met starten, maak "
            "eerst werk af",
        },
        "finding_cadence_no_majority": {
            "en": "Team {team} of {organisation} runs {days}-day sprints (latest started {weekday} "
            "{latest}); the {teams} teams of {organisation} follow {cadences} different cadences "
            "with no majority: agree one sprint cadence",
            "nl": "Team {team} van {organisation} werkt in sprints van {days} dagen (laatste "
            "gestart op {weekday} {latest}); de {teams} teams van {organisation} volgen "
            "{cadences} verschillende sprintritmes zonder meerderheid: spreek één sprintritme af",
        },
        "finding_cadence_off": {
            "en": "Team {team} of {organisation} runs {days}-day sprints (latest started {weekday} "
            "{latest}), while {majority_teams} of its {teams} teams run {majority_days}-day "
            "sprints (latest started {majority_weekday} {majority_latest}): align the sprint "
            "boundaries",
            "nl": "Team {team} van {organisation} werkt in sprints van {days} dagen (laatste "
            "gestart op {weekday} {latest}), terwijl {majority_teams} van de {teams} teams "
            "sprints van {majority_days} dagen hebben (laatste gestart op {majority_weekday} "
            "{majority_latest}): lijn de sprintgrenzen uit",
        },
        "finding_weekday_mon": {"en": "Mon", "nl": "ma"},
        "finding_weekday_tue": {"en": "Tue", "nl": "di"},
        "finding_weekday_wed": {"en": "Wed", "nl": "wo"},
        "finding_weekday_thu": {"en": "Thu", "nl": "do"},
        "finding_weekday_fri": {"en": "Fri", "nl": "vr"},
        "finding_weekday_sat": {"en": "Sat", "nl": "za"},
        "finding_weekday_sun": {"en": "Sun", "nl": "zo"},
        "finding_priority_inversion": {
            "en": "{item} ({priority}, {team}) blocks higher-priority work of other teams: "
            "{waiting}; raise its priority or re-plan the dependent work",
            "nl": "{item} ({priority}, {team}) blokkeert werk met een hogere prioriteit van "
            "andere teams: {waiting}; verhoog de prioriteit of herplan het wachtende werk",
        },
        "finding_waiting_entry": {
            "en": "{key} ({priority}, {team})",
            "nl": "{key} ({priority}, {team})",
        },
        "finding_unprioritised": {"en": "unprioritised", "nl": "zonder prioriteit"},
        "finding_timing_conflict": {
            "en": "{item} is planned to finish {planned}, {slip} days before its blocker {blocker} "
            "is planned to finish {blocker_planned}: re-plan one of them{more}",
            "nl": "{item} staat gepland tot {planned}, {slip} dagen vóór het blokkerende item "
            "{blocker} dat tot {blocker_planned} gepland staat: herplan één van beide{more}",
        },
        "finding_timing_unscheduled_blocker": {
            "en": "{item} is planned to finish {planned} but its blocker {blocker} is not planned "
            "at all: get it scheduled{more}",
            "nl": "{item} staat gepland tot {planned}, maar het blokkerende item {blocker} is "
            "helemaal niet gepland: laat het inplannen{more}",
        },
        "finding_timing_at_risk": {
            "en": "{item} is planned to finish {planned}, in the same sprint as or on the same day "
            "as its blocker {blocker}: no slack, agree the order in the Scrum of Scrums{more}",
            "nl": "{item} staat gepland tot {planned}, in dezelfde sprint of op dezelfde dag als "
            "het blokkerende item {blocker}: geen speling, spreek de volgorde af in de Scrum of "
            "Scrums{more}",
        },
        "finding_more_suffix": {"en": " (+{n} more)", "nl": " (nog {n})"},
        "finding_dod_drift_no_majority": {
            "en": "Team {team}: the {teams} teams of product {product} use {variants} different "
            "{levels} workflows with no majority: agree one workflow and Definition of Done",
            "nl": "Team {team}: de {teams} teams van product {product} gebruiken {variants} "
            "verschillende workflows voor {levels} zonder meerderheid: spreek één workflow en "
            "Definition of Done af",
        },
        "finding_dod_drift": {
            "en": "Team {team} uses a {levels} workflow that differs from the one {majority_teams} "
            "of {teams} teams of product {product} share (extra: {extra}; missing: {missing}): "
            "align the Definition of Done",
            "nl": "Team {team} gebruikt een workflow voor {levels} die afwijkt van die van "
            "{majority_teams} van de {teams} teams van product {product} (extra: {extra}; "
            "ontbrekend: {missing}): stem de Definition of Done af",
        },
        "finding_none": {"en": "none", "nl": "geen"},
        "finding_dod_skipped": {
            "en": "{type} {item} reached done on {done} without passing {states}: check it "
            "against the Definition of Done",
            "nl": "{type} {item} is op {done} gereed gemeld zonder {states} te passeren: toets "
            "het aan de Definition of Done",
        },
        "finding_duplicate_effort": {
            "en": "{type} {item} looks like {other_key} '{other_title}' of team {other_team} "
            "({other_organisation}) (title similarity {similarity}): agree who does it and link "
            "the items",
            "nl": "{type} {item} lijkt op {other_key} '{other_title}' van team {other_team} "
            "({other_organisation}) (titelovereenkomst {similarity}): spreek af wie het doet en "
            "koppel de items",
        },
        "finding_duplicate_effort_more": {
            "en": "{type} {item} looks like {other_key} '{other_title}' of team {other_team} "
            "({other_organisation}) (title similarity {similarity}) and {more} more similar "
            "items: agree who does it and link the items",
            "nl": "{type} {item} lijkt op {other_key} '{other_title}' van team {other_team} "
            "({other_organisation}) (titelovereenkomst {similarity}) en nog {more} vergelijkbare "
            "items: spreek af wie het doet en koppel de items",
        },
        "finding_custom_failed": {
            "en": "Custom rule {rule} failed on this data: {error} - fix its SQL in pmolens.toml",
            "nl": "Eigen regel {rule} liep vast op deze gegevens: {error} - herstel de SQL in "
            "pmolens.toml",
        },
    }
)


def finding_sentence(row: Mapping[str, Any], t: Translate) -> str:
    """What one finding says, in ``t``'s language (``message_key`` + ``message_params``); its
    English ``message`` when it has no key (custom rules, findings kept from before the keys)."""
    key = row.get("message_key")
    if key:
        try:
            return sentence(str(key), row.get("message_params"), t)
        except KeyError:
            pass
    return str(row.get("message") or "")
