"""Analyses per domain, registered with ``warehouse.results.analysis`` on import.

One module per domain; add yours to the import below.
"""

from warehouse.analyses import (  # noqa: F401
    alignment,
    backlog,
    dependencies,
    flow,
    forecast,
    kpis,
    portfolio,
)
