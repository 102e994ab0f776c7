"""A bounded schemathesis run over the whole OpenAPI, in-process (ASGI), every check on.

Deterministic (fixed seed, derandomized): the same ~350 requests every run (8 per operation,
valid and invalid), against the small two-organisation warehouse of ``conftest.py``, sent as the
operator so every route answers past its auth (``ignored_auth`` still proves each route refuses a
request without a token). Syncs started by ``POST /sync`` reach a tracker stub that refuses at
once, so nothing leaves the machine.

``PMOLENS_FUZZ_FULL=1`` adds schemathesis's coverage phase (every boundary and type violation the
schema defines and unexpected methods: ~2,500 requests, about 30 s more).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, cast

import httpx
import pytest
import schemathesis

from pmolens.api.app import create_app
from pmolens.api.runtime import Runtime, make_runtime
from pmolens.connectors.http import TrackerClient
from tests.api.conftest import OPERATOR, VIEWER, auth, chain_settings, seed

FULL = os.environ.get("PMOLENS_FUZZ_FULL") == "1"
EXAMPLES = 8  # per operation

# Refusals that depend on the data, not on the schema: a source or organisation that is not
# configured, a forecast day outside sync day + horizon. They are documented 422s.
DATA_DEPENDENT_422 = (
    ("POST", "/sync"),
    ("GET", "/forecast/teams"),
    ("GET", "/reports/steering"),
    ("GET", "/reports/steering.pdf"),
)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240601,
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "mode": "all"},
        "checks": {"enabled": True},
        "phases": {"coverage": {"enabled": FULL}, "examples": {"enabled": True}},
        "operations": [
            {
                "include-path": path,
                "include-method": method,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
                    }
                },
            }
            for method, path in DATA_DEPENDENT_422
        ],
    }
)


class _Target:
    """The ASGI app the schema sends to: the app of the module's runtime fixture. Each request
    gets its own event loop here, so syncs it started are awaited before that loop ends."""

    app: Any = None
    runtime: Runtime | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the fixture's app has no lifespan work to share
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)
        if self.runtime is not None:
            await self.runtime.syncs.wait()


TARGET = _Target()
# The OpenAPI does not depend on the runtime, so it is read once at import, for parametrize.
schema = schemathesis.openapi.from_dict(create_app(cast(Runtime, None)).openapi(), config=CONFIG)
schema.app = TARGET


def _refusing_tracker(config: Any) -> TrackerClient:
    return TrackerClient(
        config.base_url,
        transport=httpx.MockTransport(lambda request: httpx.Response(401)),
        max_retries=0,
    )


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory):
    """One warehouse for the whole run (seeding one per operation would double its time)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TEST_VIEWER_TOKEN", VIEWER)
        env.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
        settings = chain_settings(tmp_path_factory.mktemp("fuzz"))
        runtime = make_runtime(settings)
        seed(runtime.warehouse, settings)
        runtime.syncs.client_factory = _refusing_tracker
        TARGET.app, TARGET.runtime = create_app(runtime), runtime
        yield runtime
        TARGET.app = TARGET.runtime = None
        runtime.warehouse.close()


CASES: Counter[str] = Counter()


@schema.parametrize()
def test_openapi_contract(case, fuzz_runtime):
    CASES[case.operation.label] += 1
    case.call_and_validate(headers=auth(OPERATOR))


def test_openapi_run_is_bounded():
    """After the contract tests: every operation was exercised, a few hundred cases in all."""
    if not CASES:
        pytest.skip("runs together with test_openapi_contract")
    assert set(CASES) == {op.ok().label for op in schema.get_all_operations()}
    if not FULL:
        assert 200 <= sum(CASES.values()) <= len(CASES) * EXAMPLES
