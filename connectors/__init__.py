"""Tracker connectors. Adding a tracker = one module + one fixtures folder + one line below."""

from __future__ import annotations

from pmolens.connectors.base import Connector, ConnectorFactory


def registry() -> dict[str, ConnectorFactory]:
    """Source kind -> connector factory (imported lazily so a CLI start stays fast)."""
    from pmolens.connectors.jira import JiraConnector

    factories: dict[str, ConnectorFactory] = {
        "jira_cloud": JiraConnector,
        "jira_dc": JiraConnector,
    }
    try:
        from pmolens.connectors.azure_devops import AzureDevOpsConnector

        factories["azure_devops"] = AzureDevOpsConnector
    except ImportError:  # pragma: no cover - until the Azure DevOps connector lands
        pass
    return factories


__all__ = ["Connector", "ConnectorFactory", "registry"]
