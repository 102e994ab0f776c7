"""Analyses per domain, registered on import (``warehouse.analyses.base``).

One module per domain; add yours to the import below. The import order is the registration
order, so the order in which the analyses and snapshots run and are kept (an analysis pays for the
shared intermediates it is the first to need).
"""

from pmolens.warehouse.analyses.base import ANALYSES, SNAPSHOTS, Inputs, analysis, snapshot

# isort: off
from pmolens.warehouse.analyses import alignment, dependencies, flow, backlog  # noqa: F401  (registers)
from pmolens.warehouse.analyses import forecast, kpis, portfolio  # noqa: F401  (registers)
from pmolens.warehouse.analyses import decisions  # noqa: F401  (registers; reads the above)
from pmolens.warehouse.analyses import board  # noqa: F401  (registers)

# isort: on

__all__ = ["ANALYSES", "SNAPSHOTS", "Inputs", "analysis", "snapshot"]
