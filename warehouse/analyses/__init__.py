"""Analyses per domain, registered with ``warehouse.results.analysis`` on import.

One module per domain; add yours to the import below.
"""

from warehouse.analyses import alignment, dependencies, portfolio  # noqa: F401
