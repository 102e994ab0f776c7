"""Intermediates of one ``Inputs`` are computed at most once and reached by name: the ones
several domains read are properties, a domain's own are ``@once`` functions keyed by the
function itself (two of them can never hand each other's frame out, as string keys could)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.analyses.base import once
from pmolens.warehouse.config import Settings
from pmolens.warehouse.model import SCHEMAS

AS_OF = datetime(2024, 6, 3, tzinfo=UTC)


def empty_inputs() -> Inputs:
    return Inputs({n: pl.DataFrame(schema=s) for n, s in SCHEMAS.items()}, Settings(), AS_OF)


def test_shared_intermediates_are_computed_once_per_inputs() -> None:
    inputs = empty_inputs()
    assert inputs.dependency_edges is inputs.dependency_edges
    assert inputs.flow_data is inputs.flow_data
    assert empty_inputs().dependency_edges is not inputs.dependency_edges


def test_once_keeps_each_function_apart() -> None:
    calls: list[str] = []

    @once
    def first(inputs: Inputs) -> str:
        calls.append("first")
        return "first"

    @once
    def second(inputs: Inputs) -> str:
        calls.append("second")
        return "second"

    inputs = empty_inputs()
    assert [first(inputs), second(inputs), first(inputs), second(inputs)] == [
        "first",
        "second",
        "first",
        "second",
    ]
    assert calls == ["first", "second"]
    first(empty_inputs())
    assert calls == ["first", "second", "first"]


def test_every_analysis_runs_on_empty_frames() -> None:
    inputs = empty_inputs()
    for name, analysis in ANALYSES.items():
        assert isinstance(analysis(inputs), pl.DataFrame), name
