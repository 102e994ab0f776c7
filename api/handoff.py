"""Single writer: while `pmolens serve` owns the warehouse, the CLI hands syncs to it.

DuckDB lets one process open a database file for writing. `pmolens serve` writes a small claim
file next to the warehouse (``<warehouse>.server.json``: URL, pid and a random instance id) once it
listens; `pmolens sync` finds it, POSTs ``/sync`` with the operator token and waits for the runs to
finish. Without a running server the CLI opens the file itself. So both work at the same time,
with no lock errors, and readers inside the server only ever see committed syncs.

A claim is trusted only when its server answers as itself: the pid is alive *and* ``GET /health``
at the claim's URL answers with the claim's instance id. A claim whose pid is gone, whose URL has
nothing listening, or where another server answers (the pid was reused, the port taken by another
process) is stale: it is removed and the CLI works on the file itself. Every failure of a handoff
(the server refuses, or vanishes mid-way) is a ``HandoffError``: one line, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx

from pmolens.warehouse.config import Settings

log = logging.getLogger("pmolens.handoff")

HEALTH_TIMEOUT = 5.0  # seconds a claimed server has to answer /health


class HandoffError(RuntimeError):
    """A handoff to the running server failed; the message is one line, safe to show."""


def claim_path(settings: Settings) -> Path:
    return Path(str(settings.warehouse_path) + ".server.json")


def write_claim(settings: Settings, url: str, instance: str) -> Path:
    """Claim the warehouse for this process (replacing a stale claim); written atomically."""
    path = claim_path(settings)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    claim = {"url": url, "pid": os.getpid(), "instance": instance}
    temporary.write_text(json.dumps(claim), encoding="utf-8")
    temporary.replace(path)
    return path


def read_claim(settings: Settings) -> dict[str, Any] | None:
    try:
        claim = json.loads(claim_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return claim if isinstance(claim, dict) else None


def release_claim(settings: Settings, instance: str | None = None) -> None:
    """Remove the claim if it is this process's (and this instance's, when given)."""
    claim = read_claim(settings)
    if claim is None or claim.get("pid") != os.getpid():
        return
    if instance is not None and claim.get("instance") != instance:
        return
    claim_path(settings).unlink(missing_ok=True)


def running_server(settings: Settings, *, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any] | None:
    """The server that owns this warehouse, if it answers as itself; a stale claim is removed.

    Raises ``HandoffError`` when the claimed server is alive and listening but does not answer
    in time: working on the file then would meet its lock.
    """
    claim = read_claim(settings)
    if claim is None:
        return None
    reason = stale_reason(claim, timeout=timeout)
    if reason is None:
        return claim
    log.info("ignoring the stale claim %s: %s", claim_path(settings), reason)
    if read_claim(settings) == claim:  # not replaced meanwhile by a server that just started
        claim_path(settings).unlink(missing_ok=True)
    return None


def stale_reason(claim: dict[str, Any], *, timeout: float = HEALTH_TIMEOUT) -> str | None:
    """Why a claim cannot be trusted, or None when its server answered with its instance id."""
    try:
        pid, url, instance = int(claim["pid"]), str(claim["url"]), str(claim["instance"])
    except (KeyError, TypeError, ValueError):
        return "the claim is incomplete (no pid, url or instance id)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} is gone"
    except PermissionError:
        pass  # alive, another user's: the /health answer decides
    except OSError as exc:
        return f"process {pid} cannot be checked ({exc.strerror})"
    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.ConnectError:
        return f"nothing listens at {url}"
    except httpx.TimeoutException:
        raise HandoffError(
            f"the server at {url} (pid {pid}) claims the warehouse but did not answer /health "
            f"within {timeout:.0f} s; try again, or stop it"
        ) from None
    except httpx.HTTPError as exc:
        return f"{url} did not answer /health ({type(exc).__name__})"
    try:
        answered = response.json().get("instance") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        answered = None
    if answered != instance:
        return f"another server answers at {url} (not instance {instance[:8]})"
    return None


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
            raise HandoffError(
                "pmolens serve owns the warehouse; to hand it a sync, export the operator token "
                "(server.tokens with role = 'operator')"
            )
        headers["Authorization"] = f"Bearer {token}"
    url = server["url"]
    started = False
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
            response = client.post(
                "/sync",
                json={"sources": sources, "full": full, "allow_mass_delete": allow_mass_delete},
            )
            if response.status_code == 409:
                raise HandoffError(f"already syncing: {_detail(response)}")
            if response.status_code in (401, 403):
                raise HandoffError("the server refused the operator token")
            if response.status_code != 202:
                raise HandoffError(
                    f"the server at {url} answered POST /sync with HTTP {response.status_code}: "
                    f"{_detail(response)}"
                )
            run_ids = [run["run_id"] for run in response.json()["runs"]]
            started = True
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                runs = [_run(client, run_id) for run_id in run_ids]
                if all(run["outcome"] not in ("running", "queued") for run in runs):
                    return runs
                time.sleep(poll)
    except httpx.HTTPError as exc:
        what = "during the sync" if started else "before the sync started"
        raise HandoffError(
            f"the server at {url} stopped answering {what} ({type(exc).__name__}); "
            + (
                "its unfinished runs are marked abandoned when it starts again - "
                "see `pmolens status`, then sync again"
                if started
                else "nothing was synced - run `pmolens sync` again"
            )
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise HandoffError(
            f"the server at {url} sent an answer pmolens does not understand "
            f"({type(exc).__name__}); is it the same pmolens version?"
        ) from None
    raise HandoffError(f"the server's sync did not finish within {timeout:.0f} s")


def _run(client: httpx.Client, run_id: int) -> dict[str, Any]:
    response = client.get(f"/sync-runs/{run_id}")
    if response.status_code != 200:
        raise HandoffError(
            f"the server answered GET /sync-runs/{run_id} with HTTP {response.status_code}: "
            f"{_detail(response)}"
        )
    run: dict[str, Any] = response.json()
    return run


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else response.text
    return " ".join(text.split())[:200]
