"""Analyses per domain, registered on import (``warehouse.analyses.base``).

One module per domain; add yours to the import below.
"""

from warehouse.analyses import (  # noqa: F401  (registers them)
    alignment,
    backlog,
    dependencies,
    flow,
    forecast,
    kpis,
    portfolio,
)
from warehouse.analyses.base import ANALYSES, SNAPSHOTS, Inputs, analysis, snapshot

__all__ = ["ANALYSES", "SNAPSHOTS", "Inputs", "analysis", "snapshot"]
