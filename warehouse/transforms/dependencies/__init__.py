"""Cross-team and cross-organisation dependency analytics over the ``blocks`` links.

``dependency_edges`` turns every ``blocks`` link into one row with both ends described, flagged
and given a timing verdict; everything else is computed from that frame. One module per concept:

- ``contract``: the edges' columns (``EDGES_SCHEMA``, shared with other domains) and helpers;
- ``edges``: building the edges from links, items and sprints;
- ``timing``: the timing verdict and the red lines (timing conflicts);
- ``matrix``: the team and organisation matrices;
- ``graph``: the waiting graph and its condensation (shared by the next three);
- ``cycles``, ``chains``, ``bottlenecks``: the graph signals;
- ``blocked``: age and blocked time from the status history;
- ``sos``: the Scrum of Scrums view and its per-team drill-downs;
- ``trend``: the per-sync trend snapshot.

This package re-exports the public names callers use. Definitions: docs/dependencies.md.
"""

from __future__ import annotations

from pmolens.warehouse.settings_analytics import DependencyParams
from pmolens.warehouse.transforms.dependencies.blocked import (
    BLOCKED_SCHEMA,
    DEFAULT_BLOCKED,
    blocked_time,
    with_blocked_time,
)
from pmolens.warehouse.transforms.dependencies.bottlenecks import (
    BOTTLENECK_SCHEMA,
    TEAM_BOTTLENECK_SCHEMA,
    Sketches,
    dependency_bottlenecks,
    reach_sketches,
)
from pmolens.warehouse.transforms.dependencies.chains import (
    CHAINS_SCHEMA,
    MAX_PATH,
    dependency_chains,
)
from pmolens.warehouse.transforms.dependencies.contract import (
    DAY_US,
    EDGE_EXTRA_SCHEMA,
    EDGES_SCHEMA,
    FULL_EDGES_SCHEMA,
    NO_TEAM,
    empty_edges,
)
from pmolens.warehouse.transforms.dependencies.cycles import CYCLES_SCHEMA, dependency_cycles
from pmolens.warehouse.transforms.dependencies.edges import dependency_edges
from pmolens.warehouse.transforms.dependencies.graph import (
    Condensed,
    Graph,
    condense,
    waiting_graph,
)
from pmolens.warehouse.transforms.dependencies.matrix import MATRIX_SCHEMA, dependency_matrix
from pmolens.warehouse.transforms.dependencies.sos import (
    SOS_SCHEMA,
    scrum_of_scrums,
    team_hindering,
    team_impediments,
)
from pmolens.warehouse.transforms.dependencies.timing import (
    RED_LINES,
    TIMINGS,
    dependency_conflicts,
)
from pmolens.warehouse.transforms.dependencies.trend import TREND_METRICS, trend_snapshot

__all__ = [
    "BLOCKED_SCHEMA",
    "BOTTLENECK_SCHEMA",
    "CHAINS_SCHEMA",
    "CYCLES_SCHEMA",
    "DAY_US",
    "DEFAULT_BLOCKED",
    "EDGES_SCHEMA",
    "EDGE_EXTRA_SCHEMA",
    "FULL_EDGES_SCHEMA",
    "MATRIX_SCHEMA",
    "MAX_PATH",
    "NO_TEAM",
    "RED_LINES",
    "SOS_SCHEMA",
    "TEAM_BOTTLENECK_SCHEMA",
    "TIMINGS",
    "TREND_METRICS",
    "Condensed",
    "DependencyParams",
    "Graph",
    "Sketches",
    "blocked_time",
    "condense",
    "dependency_bottlenecks",
    "dependency_chains",
    "dependency_conflicts",
    "dependency_cycles",
    "dependency_edges",
    "dependency_matrix",
    "empty_edges",
    "reach_sketches",
    "scrum_of_scrums",
    "team_hindering",
    "team_impediments",
    "trend_snapshot",
    "waiting_graph",
    "with_blocked_time",
]
