"""Single writer: while `pmolens serve` owns the warehouse, the CLI hands syncs to it.

DuckDB lets one process open a database file for writing. `pmolens serve` writes a small claim
file next to the warehouse (``<warehouse>.server.json``: URL and pid) while it runs; `pmolens sync`
finds it, POSTs ``/sync`` with the operator token and waits for the runs to finish. Without a
running server the CLI opens the file itself. So both work at the same time, with no lock errors,
and readers inside the server only ever see committed syncs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from warehouse.config import Settings


def claim_path(settings: Settings) -> Path:
    return Path(str(settings.warehouse_path) + ".server.json")


def write_claim(settings: Settings, url: str) -> Path:
    path = claim_path(settings)
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    return path


def release_claim(settings: Settings) -> None:
    path = claim_path(settings)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The server that owns this warehouse, if one is alive (a stale claim is ignored)."""
    path = claim_path(settings)
    try:
        claim = json.loads(path.read_text(encoding="utf-8"))
        os.kill(int(claim["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(claim)


def operator_token(settings: Settings) -> str | None:
    for token in settings.server.tokens:
        if token.role == "operator" and os.environ.get(token.env):
            return os.environ[token.env]
    return None


def trigger_remote_sync(
    server: dict[str, Any],
    settings: Settings,
    sources: list[str] | None,
    full: bool,
    *,
    allow_mass_delete: bool = False,
    timeout: float = 3600.0,
    poll: float = 0.5,
) -> list[dict[str, Any]]:
    """POST /sync to the running server, then poll /sync-runs until every run has finished."""
    headers = {}
    if settings.server.auth == "token":
        token = operator_token(settings)
        if not token:
            raise RuntimeError(
                "pmolens serve owns the warehouse; to hand it a sync, export the operator token "
                "(server.tokens with role = 'operator')"
            )
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=server["url"], headers=headers, timeout=30.0) as client:
        response = client.post(
            "/sync",
            json={"sources": sources, "full": full, "allow_mass_delete": allow_mass_delete},
        )
        if response.status_code == 409:
            raise RuntimeError(f"already syncing: {response.json().get('detail')}")
        if response.status_code in (401, 403):
            raise RuntimeError("the server refused the operator token")
        response.raise_for_status()
        run_ids = [run["run_id"] for run in response.json()["runs"]]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [client.get(f"/sync-runs/{run_id}").json() for run_id in run_ids]
            if all(run["outcome"] not in ("running", "queued") for run in runs):
                return runs
            time.sleep(poll)
    raise RuntimeError(f"the server's sync did not finish within {timeout:.0f} s")
