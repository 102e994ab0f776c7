"""`pmolens demo` and every next step it prints, run in order as a person would: the demo syncs
the simulated chain complete for all three sources, then `pmolens status`, `pmolens serve
--with-simulator` (in the background, until /health answers), `pmolens sync` handed to that
server (complete again, though this shell has no PMOLENS_DEMO_TOKEN), and the reports it names."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx

SOURCES = ("northwind-jira", "fabrikam-jira-dc", "contoso-ado")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pmolens() -> list[str]:
    script = Path(sys.executable).with_name("pmolens")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pmolens.api.cli"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_pmolens(), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def next_steps(output: str) -> list[str]:
    """The commands under "Next": one per line, each what a person would copy."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Next")
    return [
        line.strip()
        for line in lines[start + 1 :]
        if line.strip().startswith(("pmolens ", "open "))
    ]


def _outcomes(output: str) -> dict[str, str]:
    """source -> outcome, from the rows of the first table with an "outcome" column."""
    lines = output.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("┃ source") and "outcome" in line
    )
    found = {}
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells[0] in SOURCES:
            found[cells[0]] = cells[1]
    return found


def test_every_next_step_the_demo_prints_works(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PMOLENS_DEMO_TOKEN", "PMOLENS_LANG")}
    env["COLUMNS"] = "200"
    port, simulator_port = _free_port(), _free_port()
    directory = tmp_path / "demo"
    demo = _run(
        [
            "demo",
            "--directory",
            str(directory),
            "--size",
            "500",
            "--port",
            str(port),
            "--simulator-port",
            str(simulator_port),
        ],
        env,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert _outcomes(demo.stdout) == dict.fromkeys(SOURCES, "complete"), demo.stdout
    config = tomllib.loads((directory / "pmolens.toml").read_text(encoding="utf-8"))
    assert all(source["schedule"] for source in config["sources"])
    assert config["server"]["port"] == port

    steps = next_steps(demo.stdout)
    assert [step.split()[:2] for step in steps] == [
        ["pmolens", "status"],
        ["pmolens", "serve"],
        ["pmolens", "sync"],
        ["open", str(directory / "steering-nl.html")],
    ], steps

    server: subprocess.Popen | None = None
    try:
        for step in steps:
            words = shlex.split(step)
            if words[0] == "open":
                for path in (w for w in words[1:] if w != "or"):
                    assert Path(path).stat().st_size > 10_000, path
            elif words[1] == "serve":
                server = subprocess.Popen(
                    [*_pmolens(), *words[1:]],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                _wait_for_health(f"http://127.0.0.1:{port}", server)
            else:
                done = _run(words[1:], env)
                assert done.returncode == 0, (step, done.stdout, done.stderr)
                if words[1] == "status":
                    assert all(name in done.stdout for name in SOURCES), done.stdout
                if words[1] == "sync":
                    assert "handing the sync to it" in done.stdout, done.stdout
                    assert _outcomes(done.stdout) == dict.fromkeys(SOURCES, "complete"), (
                        done.stdout + done.stderr
                    )
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    # Ctrl+C: uvicorn stops, then hands the interrupt on (130, as any interrupted command)
    assert server is not None and server.returncode in (0, 130), (
        server.stdout.read() if server else ""
    )
    assert not (directory / "pmolens.duckdb.server.json").exists()  # the claim is released


def _wait_for_health(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"pmolens serve did not answer {url}/health in time")
