"""Flow metrics analyses (cycle time, throughput, WIP, CFD, aging, efficiency, distribution,
Little's Law). Transforms: warehouse/transforms/flow.py; definitions: docs/flow.md."""

from __future__ import annotations

from warehouse.results import Inputs
from warehouse.transforms.flow import FlowData, FlowParams, prepare


def flow_params(inputs: Inputs) -> FlowParams:
    return FlowParams.from_mapping(inputs.settings.analytics.get("flow"))


def flow_data(inputs: Inputs) -> FlowData:
    """Items joined to their status history once per generation; shared by flow, backlog,
    forecast and KPI analyses."""
    data: FlowData = inputs.shared(
        "flow_data",
        lambda: prepare(
            inputs.work_items,
            inputs.frames["status_changes"],
            inputs.as_of,
            flow_params(inputs).work_levels,
        ),
    )
    return data
