"""The web app's own sentences, in English and Dutch (the shared ones live in reports/i18n.py)."""

from __future__ import annotations

from pmolens.reports import steering  # noqa: F401  (the sections register the shared labels)
from pmolens.reports.i18n import add_labels

add_labels(
    {
        "app_name": {"en": "pmolens", "nl": "pmolens"},
        "nav_decisions": {"en": "Decisions", "nl": "Besluiten"},
        "nav_board": {"en": "Program board", "nl": "Programmabord"},
        "nav_lists": {"en": "Lists", "nl": "Lijsten"},
        "nav_matrix": {"en": "Dependency matrix", "nl": "Afhankelijkhedenmatrix"},
        "nav_report": {"en": "Steering report", "nl": "Stuurrapportage"},
        "nav_views": {"en": "Saved views", "nl": "Bewaarde weergaven"},
        "skip_to_content": {"en": "Skip to content", "nl": "Naar de inhoud"},
        "language": {"en": "Language", "nl": "Taal"},
        "other_language": {"en": "Nederlands", "nl": "English"},
        "signed_in_as": {"en": "Signed in as", "nl": "Aangemeld als"},
        "sign_in": {"en": "Sign in", "nl": "Aanmelden"},
        "sign_out": {"en": "Sign out", "nl": "Afmelden"},
        "token": {"en": "Access token", "nl": "Toegangstoken"},
        "sign_in_lead": {
            "en": "Paste the viewer or operator token your administrator gave you. It is "
            "checked once; the browser then keeps a session for one working day.",
            "nl": "Plak het viewer- of operatortoken dat je van je beheerder hebt gekregen. "
            "Het wordt één keer gecontroleerd; daarna onthoudt de browser je sessie een "
            "werkdag lang.",
        },
        "sign_in_failed": {
            "en": "That token is not known here. Check it and try again.",
            "nl": "Dit token is hier niet bekend. Controleer het en probeer het opnieuw.",
        },
        "form_expired": {
            "en": "This form has expired. Reload the page and try again.",
            "nl": "Dit formulier is verlopen. Laad de pagina opnieuw en probeer het nog eens.",
        },
        "filters": {"en": "Filters", "nl": "Filters"},
        "apply": {"en": "Apply", "nl": "Toepassen"},
        "clear": {"en": "Clear", "nl": "Wissen"},
        "all": {"en": "All", "nl": "Alle"},
        "period_from": {"en": "From", "nl": "Van"},
        "period_to": {"en": "To", "nl": "Tot en met"},
        "as_of_field": {"en": "As of", "nl": "Peildatum"},
        "data_as_of": {"en": "Data as of {moment}", "nl": "Gegevens per {moment}"},
        "as_of_past": {
            "en": "You are looking at the figures as they were on {moment}.",
            "nl": "Je kijkt naar de cijfers zoals ze waren op {moment}.",
        },
        "back_to_now": {"en": "Back to the latest figures", "nl": "Terug naar de actuele cijfers"},
        "export_csv": {"en": "Export CSV", "nl": "Exporteren als CSV"},
        "export_parquet": {"en": "Export Parquet", "nl": "Exporteren als Parquet"},
        "rows_shown": {
            "en": "Rows {first}–{last} of {total}",
            "nl": "Rijen {first}–{last} van {total}",
        },
        "previous": {"en": "Previous", "nl": "Vorige"},
        "next": {"en": "Next", "nl": "Volgende"},
        "open_in_tracker": {"en": "Open in the tracker", "nl": "Openen in de tracker"},
        "save_view": {"en": "Save this view", "nl": "Deze weergave bewaren"},
        "view_name": {"en": "Name", "nl": "Naam"},
        "delete": {"en": "Delete", "nl": "Verwijderen"},
        "no_views": {
            "en": "No saved views yet: set filters on any page and save it under a name.",
            "nl": "Nog geen bewaarde weergaven: zet filters op een pagina en bewaar die onder "
            "een naam.",
        },
        "view_saved": {"en": "View saved.", "nl": "Weergave bewaard."},
        "not_found": {"en": "Not found", "nl": "Niet gevonden"},
        "unknown_organisation": {
            "en": "There is no organisation {name} here. Known: {known}.",
            "nl": "Organisatie {name} bestaat hier niet. Bekend: {known}.",
        },
        "unknown_team": {
            "en": "There is no team {name} here.",
            "nl": "Team {name} bestaat hier niet.",
        },
        "unknown_item": {
            "en": "There is no item {name} in the warehouse.",
            "nl": "Item {name} staat niet in het warehouse.",
        },
        "unknown_list": {
            "en": "There is no list {name}. Lists: {known}.",
            "nl": "Lijst {name} bestaat niet. Lijsten: {known}.",
        },
        "bad_request": {"en": "That request cannot be answered", "nl": "Dit verzoek kan niet"},
        # lists
        "list_red_lines": {"en": "Red lines", "nl": "Rode lijnen"},
        "list_dependencies": {"en": "Open dependencies", "nl": "Openstaande afhankelijkheden"},
        "list_impediments": {"en": "Impediments", "nl": "Impediments"},
        "list_findings": {"en": "Findings", "nl": "Bevindingen"},
        "list_epics": {"en": "Epic forecasts", "nl": "Epicprognoses"},
        "list_decisions": {"en": "Decisions", "nl": "Besluiten"},
        "list_items": {"en": "Work items", "nl": "Werkitems"},
        # pages
        "organisation_page": {"en": "Organisation {name}", "nl": "Organisatie {name}"},
        "team_page": {"en": "Team {name}", "nl": "Team {name}"},
        "sos_questions": {"en": "Scrum of Scrums", "nl": "Scrum of Scrums"},
        "sos_hindering": {
            "en": "Does {team} hold up other teams?",
            "nl": "Houdt {team} andere teams op?",
        },
        "sos_impeded": {
            "en": "What is {team} waiting on?",
            "nl": "Waar wacht {team} op?",
        },
        "sos_interdependence": {
            "en": "How interdependent is {team}?",
            "nl": "Hoe afhankelijk is {team} van anderen?",
        },
        "interdependence_line": {
            "en": "{share} of its {open} open items have a dependency outside the team; "
            "it works with {partners}.",
            "nl": "{share} van de {open} openstaande items heeft een afhankelijkheid buiten het "
            "team; het werkt samen met {partners}.",
        },
        "nobody": {"en": "nobody", "nl": "niemand"},
        "backlog_health": {"en": "Backlog health", "nl": "Gezondheid van de backlog"},
        "grade": {"en": "Grade", "nl": "Cijfer"},
        "ready_depth": {"en": "Ready depth (sprints)", "nl": "Ready-diepte (sprints)"},
        "flow": {"en": "Flow", "nl": "Doorstroming"},
        "cycle_p50": {"en": "Cycle time P50 (days)", "nl": "Doorlooptijd P50 (dagen)"},
        "cycle_p85": {"en": "Cycle time P85 (days)", "nl": "Doorlooptijd P85 (dagen)"},
        "throughput_sprint": {"en": "Throughput per sprint", "nl": "Doorvoer per sprint"},
        "epic_page": {"en": "Epic {key}", "nl": "Epic {key}"},
        "item_page": {"en": "Item {key}", "nl": "Item {key}"},
        "forecast_fan": {"en": "When does it land?", "nl": "Wanneer is het gereed?"},
        "waits_on": {
            "en": "What it waits on (upstream)",
            "nl": "Waar het op wacht (stroomopwaarts)",
        },
        "waited_on_by": {
            "en": "What waits on it (downstream)",
            "nl": "Wat erop wacht (stroomafwaarts)",
        },
        "its_items": {"en": "Its items", "nl": "De items"},
        "its_findings": {"en": "Findings", "nl": "Bevindingen"},
        "its_dependencies": {"en": "Dependencies", "nl": "Afhankelijkheden"},
        "blocks": {"en": "Blocks", "nl": "Blokkeert"},
        "blocked_by": {"en": "Blocked by", "nl": "Wordt geblokkeerd door"},
        "depth": {"en": "Steps away", "nl": "Stappen verwijderd"},
        "what_if": {"en": "What if…", "nl": "Wat als…"},
        "what_if_lead": {
            "en": "Try a change and see the new forecast beside the current one. Nothing in "
            "the trackers or the warehouse changes; the link below shares this scenario.",
            "nl": "Probeer een wijziging en zie de nieuwe prognose naast de huidige. Er "
            "verandert niets in de trackers of het warehouse; de link hieronder deelt dit "
            "scenario.",
        },
        "pin_blocker": {"en": "Blocker done on", "nl": "Blokkerend item gereed op"},
        "drop_dependency": {"en": "Remove dependency on", "nl": "Afhankelijkheid schrappen van"},
        "move_to_team": {"en": "Move the epic to team", "nl": "Epic verhuizen naar team"},
        "run_what_if": {"en": "Re-forecast", "nl": "Opnieuw voorspellen"},
        "current": {"en": "Current", "nl": "Huidig"},
        "scenario": {"en": "Scenario", "nl": "Scenario"},
        "driving_dependency": {"en": "Driving dependency", "nl": "Bepalende afhankelijkheid"},
        "p_on_time": {"en": "Chance on time", "nl": "Kans op tijd"},
        "share_scenario": {"en": "Link to this scenario", "nl": "Link naar dit scenario"},
        "none": {"en": "none", "nl": "geen"},
        "no_change": {"en": "(no change)", "nl": "(geen wijziging)"},
        "board_lead": {
            "en": "One row per team, each with its own sprints on one date axis. Cards are "
            "features and epics in the sprint they are planned to finish; a dashed card is "
            "the forecast (P85) where it is later. Arrows run from blocker to dependent.",
            "nl": "Eén rij per team, elk met de eigen sprints op één tijdas. Kaarten zijn "
            "features en epics in de sprint waarin ze gereed moeten zijn; een gestippelde "
            "kaart is de prognose (P85) als die later valt. Pijlen lopen van blokkerend naar "
            "afhankelijk item.",
        },
        "legend_conflict": {
            "en": "Conflict: blocker finishes later",
            "nl": "Conflict: blokkerend item is later gereed",
        },
        "legend_same_sprint": {
            "en": "At risk: same sprint or end date",
            "nl": "Risico: zelfde sprint of einddatum",
        },
        "legend_unscheduled": {"en": "Blocker not planned", "nl": "Blokkerend item niet gepland"},
        "legend_ghost": {
            "en": "Forecast P85 (later than planned)",
            "nl": "Prognose P85 (later dan gepland)",
        },
        "not_planned": {"en": "Not planned in a sprint", "nl": "Niet in een sprint gepland"},
        "more_cards": {"en": "+ {n} more", "nl": "+ nog {n}"},
        "show_all_arrows": {
            "en": "Show every dependency (also on track and unplanned)",
            "nl": "Alle afhankelijkheden tonen (ook op schema en niet gepland)",
        },
        "show_red_arrows": {"en": "Show the red lines only", "nl": "Alleen de rode lijnen tonen"},
        "list_cards": {"en": "Board cards", "nl": "Kaarten op het bord"},
        "later_or_not_planned": {"en": "Later, or not planned", "nl": "Later of niet gepland"},
        "outside_filter": {"en": "outside the filter", "nl": "buiten het filter"},
        "cell_pairs": {
            "en": "Dependencies from {blocker} to {dependent}",
            "nl": "Afhankelijkheden van {blocker} naar {dependent}",
        },
        "matrix_lead": {
            "en": "Open dependencies between teams: rows block, columns wait. A cell opens its "
            "pairs.",
            "nl": "Openstaande afhankelijkheden tussen teams: rijen blokkeren, kolommen wachten. "
            "Een cel opent de paren.",
        },
        "print": {"en": "Print", "nl": "Afdrukken"},
        "changed_since": {
            "en": "What changed since {moment}",
            "nl": "Wat is er veranderd sinds {moment}",
        },
        "changed_since_label": {
            "en": "Compare with the end of",
            "nl": "Vergelijken met het einde van",
        },
    }
)

# column headings of the app's tables
add_labels(
    {
        f"col_{key}": {"en": en, "nl": nl}
        for key, en, nl in [
            ("timing", "Verdict", "Oordeel"),
            ("blocker_key", "Blocking item", "Blokkerend item"),
            ("blocker_title", "Title", "Titel"),
            ("blocker_team", "Blocking team", "Blokkerend team"),
            ("blocker_org", "Blocking organisation", "Blokkerende organisatie"),
            ("blocker_planned_end", "Blocker planned end", "Blokkerend item gepland gereed"),
            ("dependent_key", "Waiting item", "Wachtend item"),
            ("dependent_title", "Title", "Titel"),
            ("dependent_team", "Waiting team", "Wachtend team"),
            ("dependent_org", "Waiting organisation", "Wachtende organisatie"),
            ("dependent_planned_end", "Waiting item planned end", "Wachtend item gepland gereed"),
            ("slip_days", "Days too late", "Dagen te laat"),
            ("level", "Level", "Niveau"),
            ("key", "Item", "Item"),
            ("title", "Title", "Titel"),
            ("team", "Team", "Team"),
            ("organisation", "Organisation", "Organisatie"),
            ("reason", "Reason", "Reden"),
            ("since", "Since", "Sinds"),
            ("age_days", "Days", "Dagen"),
            ("held_up_items", "Items held up", "Opgehouden items"),
            ("severity", "Severity", "Ernst"),
            ("rule", "Check", "Controle"),
            ("owner_role", "Who acts", "Actiehouder"),
            ("message", "Finding", "Bevinding"),
            ("remaining_items", "Items left", "Resterende items"),
            ("p50", "P50 (even chance)", "P50 (even kans)"),
            ("p85", "P85", "P85"),
            ("target_date", "Target date", "Streefdatum"),
            ("p_on_time", "Chance on time", "Kans op tijd"),
            ("driven_by_key", "Waits most on", "Wacht vooral op"),
            ("raw_status", "Status", "Status"),
            ("status_category", "State", "Fase"),
            ("estimate", "Estimate", "Schatting"),
            ("epic_key", "Epic", "Epic"),
            ("depth", "Steps away", "Stappen verwijderd"),
            ("links", "Dependencies", "Afhankelijkheden"),
            ("red_lines", "Red lines", "Rode lijnen"),
            ("open", "Open", "Open"),
            ("waiting", "Waiting", "Wachtend"),
            ("conflicts", "Conflicts", "Conflicten"),
            ("what", "What needs a decision", "Waarover besluiten"),
            ("items", "Items", "Items"),
            ("who", "Who acts", "Actiehouder"),
            ("kind", "Kind", "Soort"),
            ("planned_end", "Planned end", "Gepland gereed"),
            ("open_items", "Open items", "Open items"),
            ("sentence", "What needs a decision", "Waarover besluiten"),
            ("impeded_items", "Items waiting on others", "Items die op anderen wachten"),
        ]
    }
)

add_labels(
    {
        "timing_conflict": {"en": "conflict", "nl": "conflict"},
        "timing_at_risk": {"en": "at risk", "nl": "risico"},
        "timing_unscheduled_blocker": {
            "en": "blocker not planned",
            "nl": "blokkerend item niet gepland",
        },
        "timing_on_track": {"en": "on track", "nl": "op schema"},
        "timing_unplanned": {"en": "not planned", "nl": "niet gepland"},
        "timing_done": {"en": "done", "nl": "gereed"},
        "severity_critical": {"en": "critical", "nl": "kritiek"},
        "severity_warning": {"en": "warning", "nl": "waarschuwing"},
        "severity_info": {"en": "note", "nl": "ter info"},
        "item_level_initiative": {"en": "initiative", "nl": "initiatief"},
        "item_level_epic": {"en": "epic", "nl": "epic"},
        "item_level_feature": {"en": "feature", "nl": "feature"},
        "item_level_story": {"en": "story", "nl": "story"},
        "item_level_bug": {"en": "bug", "nl": "bug"},
        "item_level_task": {"en": "task", "nl": "taak"},
        "item_level_impediment": {"en": "impediment", "nl": "impediment"},
        "yes": {"en": "yes", "nl": "ja"},
        "no": {"en": "no", "nl": "nee"},
        "more_in_list": {"en": "{n} more in the full list", "nl": "nog {n} in de volledige lijst"},
    }
)

# what-if refusals (warehouse.transforms.forecast.WhatIfError codes)
add_labels(
    {
        "whatif_error": {
            "en": "That change cannot be applied ({subject}).",
            "nl": "Deze wijziging kan niet worden doorgerekend ({subject}).",
        },
        "whatif_error_ambiguous_key": {
            "en": "{subject} names more than one item: use the item id.",
            "nl": "{subject} wijst meer dan één item aan: gebruik het item-id.",
        },
        "whatif_error_malformed_drop": {
            "en": "{subject} is not a dependency (BLOCKER=DEPENDENT).",
            "nl": "{subject} is geen afhankelijkheid (BLOKKEREND=AFHANKELIJK).",
        },
        "whatif_error_malformed_pin": {
            "en": "{subject} is not a blocker with a day (ITEM=YYYY-MM-DD).",
            "nl": "{subject} is geen blokkerend item met een dag (ITEM=JJJJ-MM-DD).",
        },
        "whatif_error_no_such_dependency": {
            "en": "{subject} is not on this epic's chain of blockers, so removing it changes "
            "nothing.",
            "nl": "{subject} ligt niet in de keten van blokkerende items van deze epic; "
            "schrappen verandert niets.",
        },
        "whatif_error_not_a_blocker": {
            "en": "{subject} does not block this epic, directly or through others, so pinning "
            "it changes nothing.",
            "nl": "{subject} blokkeert deze epic niet, direct of via andere items; vastzetten "
            "verandert niets.",
        },
        "whatif_error_not_forecast": {
            "en": "{subject} has no forecast to pin.",
            "nl": "{subject} heeft geen prognose om vast te zetten.",
        },
        "whatif_error_pin_self": {
            "en": "Pin a blocker, not the epic itself ({subject}).",
            "nl": "Zet een blokkerend item vast, niet de epic zelf ({subject}).",
        },
        "whatif_error_pin_twice": {
            "en": "{subject} is pinned to two different days.",
            "nl": "{subject} is op twee verschillende dagen vastgezet.",
        },
        "whatif_error_unknown_team": {
            "en": "There is no team {subject} with work or throughput to forecast with.",
            "nl": "Er is geen team {subject} met werk of doorvoer om mee te rekenen.",
        },
        "whatif_change": {"en": "Change", "nl": "Wijziging"},
        "whatif_shift": {"en": "Shift (days)", "nl": "Verschuiving (dagen)"},
        "whatif_pins": {"en": "Pinned", "nl": "Vastgezet"},
        "whatif_drops": {"en": "Removed", "nl": "Geschrapt"},
        "whatif_reset": {"en": "Start over", "nl": "Opnieuw beginnen"},
    }
)
