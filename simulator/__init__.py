"""The tracker simulator: a loopback Jira Cloud, Jira Data Center and Azure DevOps.

A test double of the trackers, never a shortcut inside the product: connectors talk to it over
real HTTP exactly as to Jira or Azure DevOps. One server, three tenants by path prefix:
``/northwind`` (Jira Cloud), ``/fabrikam`` (Jira DC), ``/contoso`` (Azure DevOps).

    with Simulator(seed=7, size=2000) as sim:
        settings = demo_settings(sim.url)
"""

from __future__ import annotations

from typing import Any

from pmolens.simulator.portfolio import TENANTS, Portfolio, generate
from pmolens.simulator.server import DEMO_TOKEN, Simulator, serve_forever

TOKEN_ENV = "PMOLENS_DEMO_TOKEN"  # noqa: S105 - a variable name
JIRA_FIELDS = {
    "story_points": "customfield_10016",
    "sprint": "customfield_10020",
    "rank": "customfield_10019",
    "flagged": "customfield_10021",
    "business_value": "customfield_10030",
    "cost": "customfield_10031",
    "time_criticality": "customfield_10032",
    "risk_reduction": "customfield_10033",
}


# The simulator's Jira tenants serve a link type of their own ("A hands off to B": B waits for A),
# planted as an unknown type for the connectors' tests; the demo config names it, so a clean demo
# sync is complete instead of partial.
JIRA_LINK_TYPES = {"blocks": ["Blocks", "Chain Handoff"]}


def _boards(tenant: str) -> dict[str, str]:
    spec = TENANTS[tenant]
    return {str(spec.board_base + t): team for t, team in enumerate(spec.teams)}


def demo_settings(sim_url: str) -> dict[str, Any]:
    """Settings (for ``warehouse.config.settings_from_dict``) of the three demo sources.

    The field mapping matches the simulator's payloads; team_map also names each Jira board's team
    (sprints are read per board) and each Azure DevOps area path's team.
    """
    base = sim_url.rstrip("/")
    northwind, fabrikam, contoso = (TENANTS[t] for t in ("northwind", "fabrikam", "contoso"))
    return {
        "organisations": [
            {"name": "Northwind", "description": "Webshop and payments (Jira Cloud)"},
            {"name": "Fabrikam", "description": "Logistics partner (Jira Data Center)"},
            {"name": "Contoso", "description": "Identity and data platform (Azure DevOps)"},
        ],
        "sources": [
            {
                "name": northwind.source,
                "kind": "jira_cloud",
                "organisation": northwind.organisation,
                "base_url": f"{base}/northwind",
                "token_env": TOKEN_ENV,
                "email": "pmo@northwind.example",
                "jql": "project in (" + ", ".join(k for k, _ in northwind.projects) + ")",
                "boards": [int(b) for b in _boards("northwind")],
                "remote_links_jql": "labels = chain",
                "teams_from": "field",
                "team_map": _boards("northwind"),
                "fields": {**JIRA_FIELDS, "team": "customfield_10001"},
                "link_types": JIRA_LINK_TYPES,
            },
            {
                "name": fabrikam.source,
                "kind": "jira_dc",
                "organisation": fabrikam.organisation,
                "base_url": f"{base}/fabrikam",
                "token_env": TOKEN_ENV,
                "jql": "project in (" + ", ".join(k for k, _ in fabrikam.projects) + ")",
                "boards": [int(b) for b in _boards("fabrikam")],
                "remote_links_jql": "labels = chain",
                "teams_from": "component",
                "team_map": _boards("fabrikam"),
                "fields": {**JIRA_FIELDS, "epic_link": "customfield_10014"},
                "link_types": JIRA_LINK_TYPES,
            },
            {
                "name": contoso.source,
                "kind": "azure_devops",
                "organisation": contoso.organisation,
                "base_url": f"{base}/contoso",
                "token_env": TOKEN_ENV,
                "project": "Delivery",
                "teams_from": "area_path",
                "team_map": {f"Delivery\\{team}": team for team in contoso.teams},
                "fields": {"cost": "Custom.Cost", "risk_reduction": "Custom.RROEValue"},
            },
        ],
        "cross_links": [],
    }


__all__ = [
    "DEMO_TOKEN",
    "TOKEN_ENV",
    "Portfolio",
    "Simulator",
    "demo_settings",
    "generate",
    "serve_forever",
]
