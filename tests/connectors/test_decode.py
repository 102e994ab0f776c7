"""``connectors.http.decode``: answers straight into their shapes, misfits named without values."""

from __future__ import annotations

import gc

import pytest

from pmolens.connectors import azure_devops_shapes as ado
from pmolens.connectors import jira_shapes as jira
from pmolens.connectors.http import Misfit, decode, mismatch


def misfit(shape, body) -> str:
    with pytest.raises(Misfit) as caught:
        decode(shape, body)
    return mismatch(caught.value)


def test_only_the_described_fields_are_kept():
    page = decode(
        jira.DcSearchPage,
        b'{"total": 1, "expand": "names", "issues": [{"id": "10001", "self": "http://x",'
        b' "fields": {"summary": "A", "customfield_1": [1]}}]}',
    )
    assert page == {
        "total": 1,
        "issues": [{"id": "10001", "fields": {"summary": "A", "customfield_1": [1]}}],
    }


def test_numbers_sent_as_text_are_read_as_the_shape_says():
    assert decode(jira.DcIdsPage, b'{"issues": [], "total": "12"}')["total"] == 12


def test_a_misfit_names_where_and_what_never_the_value():
    said = misfit(jira.DcIdsPage, b'{"issues": [{"id": ["secret-value"]}], "total": 1}')
    assert said == "not in the expected shape (issues.0.id: expected int | str, got array)"
    assert "secret" not in misfit(jira.DcIdsPage, b'{"issues": "secret-value", "total": 1}')
    assert misfit(jira.DcIdsPage, b'{"errorMessages": ["maintenance"]}') == (
        "not in the expected shape (the answer: object missing required field issues)"
    )
    assert misfit(jira.DcIdsPage, b"<html>Bad gateway</html>") == "the tracker sent malformed JSON"


def test_either_spelling_of_a_list_fits_and_neither_is_a_misfit():
    assert decode(ado.TeamIterations, b'{"value": [{"name": "S1"}]}') == {"value": [{"name": "S1"}]}
    assert decode(ado.TeamIterations, b'{"values": [{"name": "S1"}]}') == {
        "values": [{"name": "S1"}]
    }
    assert "values" in misfit(ado.TeamIterations, b'{"message": "maintenance"}')


def test_batch_items_are_decoded_one_by_one():
    batch = decode(
        ado.WorkItemsBatch, b'{"value": [{"id": 1, "fields": {}}, null, {"id": 2, "fields": "x"}]}'
    )
    first, deleted, odd = batch["value"]
    assert decode(ado.WORK_ITEM, first) == {"id": 1, "fields": {}}
    assert decode(ado.WORK_ITEM, deleted) is None
    assert (
        misfit(ado.WORK_ITEM, odd) == "not in the expected shape (fields: expected object, got str)"
    )


def test_the_garbage_collector_is_back_after_a_misfit():
    assert gc.isenabled()
    misfit(jira.DcIdsPage, b"{")
    assert gc.isenabled()
