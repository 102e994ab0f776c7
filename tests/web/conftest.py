"""A small simulated chain (three organisations, three trackers, synced over real HTTP) with one
planted cross-organisation red line, served by a real uvicorn on a free loopback port.

The plant: a Fabrikam item planned in a late sprint blocks a Northwind item planned in an early
one (a ``conflict`` between organisations), written as an ordinary tracker link row and picked up
by the refresh like any other link.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from pmolens.api.app import create_app
from pmolens.api.runtime import make_runtime
from pmolens.warehouse.config import Settings
from tests.factories import simulated_chain

VIEWER = "web-viewer-token-8c1f"
OPERATOR = "web-operator-token-5d2e"


@dataclass
class Chain:
    settings: Settings
    blocker: dict  # the planted conflict's blocker (Fabrikam) and dependent (Northwind)
    dependent: dict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> Iterator[Chain]:
    os.environ["WEB_VIEWER_TOKEN"] = VIEWER
    os.environ["WEB_OPERATOR_TOKEN"] = OPERATOR
    server = {
        "auth": "token",
        "tokens": [
            {"role": "viewer", "env": "WEB_VIEWER_TOKEN", "name": "Vera Viewer"},
            {"role": "operator", "env": "WEB_OPERATOR_TOKEN", "name": "Otto Operator"},
        ],
    }
    settings, planted = simulated_chain(
        tmp_path_factory.mktemp("web-chain"), size=500, server=server, plant=True
    )
    assert planted is not None
    yield Chain(settings, *planted)


@dataclass
class Served:
    url: str
    chain: Chain


@pytest.fixture(scope="session")
def served(chain: Chain) -> Iterator[Served]:
    runtime = make_runtime(chain.settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", chain)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.warehouse.close()
