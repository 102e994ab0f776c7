"""Secrets never leave: a gateway that echoes the request's headers in a 400 answer.

Each tracker kind sends its credential its own way (Jira Cloud ``Basic base64(email:token)``,
Azure DevOps ``Basic base64(:PAT)``, Jira DC ``Bearer <PAT>``). The gateway answers every request
with those headers, plus the credential bare, URL-quoted and in JSON. No form of any credential may
then be found in the warehouse (every table, every column), the logs, the CLI's output, or any
answer of the API.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets as stdlib_secrets
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import respx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pmolens.api.app import create_app
from pmolens.api.cli import app as cli
from pmolens.api.runtime import make_runtime
from pmolens.warehouse.config import load_settings
from tests.api.conftest import OPERATOR, VIEWER

EMAIL = "pmo@echo.example"
HOSTS = {
    "cloud": "cloud.echo.example",
    "dc": "dc.echo.example",
    "ado": "ado.echo.example",
}


def _echo(request: httpx.Request) -> httpx.Response:
    headers = "\r\n".join(f"{k}: {v}" for k, v in request.headers.items())
    credential = request.headers.get("authorization", "").split(" ", 1)[-1]
    body = (
        f"400 Bad Request - the gateway saw:\r\n{headers}\r\n"
        f"credential {credential} / quoted {quote(credential, safe='')}\r\n"
        + json.dumps({"echo": dict(request.headers), "value": credential})
    )
    return httpx.Response(400, text=body)


def _credential_forms(tokens: dict[str, str]) -> list[str]:
    cloud, dc, ado = tokens["CLOUD_TOKEN"], tokens["DC_TOKEN"], tokens["ADO_TOKEN"]
    forms = [
        base64.b64encode(f"{EMAIL}:{cloud}".encode()).decode(),
        base64.b64encode(f":{ado}".encode()).decode(),
        f"Bearer {dc}",
    ]
    for token in tokens.values():
        forms += [token, quote(token, safe=""), base64.b64encode(token.encode()).decode()[:-4]]
    return forms


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "pmolens.toml"
    path.write_text(
        f"""
[warehouse]
path = "w.duckdb"
[server]
tokens = [{{ role = "viewer", env = "TEST_VIEWER_TOKEN" }}, {{ role = "operator", env = "TEST_OPERATOR_TOKEN" }}]
[[organisations]]
name = "Echo"
[[sources]]
name = "cloud"
kind = "jira_cloud"
organisation = "Echo"
base_url = "https://{HOSTS["cloud"]}"
email = "{EMAIL}"
token_env = "CLOUD_TOKEN"
jql = "project = EC"
boards = [1]
[[sources]]
name = "dc"
kind = "jira_dc"
organisation = "Echo"
base_url = "https://{HOSTS["dc"]}"
token_env = "DC_TOKEN"
jql = "project = ED"
[[sources]]
name = "ado"
kind = "azure_devops"
organisation = "Echo"
base_url = "https://{HOSTS["ado"]}/contoso"
project = "Delivery"
token_env = "ADO_TOKEN"
""",
        encoding="utf-8",
    )
    return path


def _leaks(text: str, forms: list[str]) -> list[str]:
    return [form for form in forms if form in text]


def test_no_credential_form_leaves_through_store_logs_cli_or_api(tmp_path, monkeypatch, caplog):
    tokens = {name: stdlib_secrets.token_urlsafe(24) for name in ("CLOUD_TOKEN", "DC_TOKEN")}
    tokens["ADO_TOKEN"] = stdlib_secrets.token_hex(26)  # ADO PATs are 52 characters
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    forms = _credential_forms(tokens)
    config = _config(tmp_path)
    caplog.set_level(logging.DEBUG)

    seen: list[str] = []

    def echo(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return _echo(request)

    with respx.mock(assert_all_called=False) as router:
        for host in HOSTS.values():
            router.route(host=host).mock(side_effect=echo)
        result = CliRunner().invoke(cli, ["sync", "--config", str(config)])

    # the gateway really did see (and echo) every kind of credential
    assert any(h.startswith("Bearer ") for h in seen)
    assert sum(h.startswith("Basic ") for h in seen) >= 2
    assert result.exit_code == 1, result.output
    assert "HTTP 400" in result.output and "***" in result.output

    # the CLI's output
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert _leaks(output, forms) == [], output
    assert "Traceback" not in output

    # the logs, at DEBUG, tracebacks included
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert _leaks(logs, forms) == []

    # the warehouse: every table, every column (and the file's bytes)
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        assert "sync_runs" in tables
        errors = con.execute("SELECT source, error FROM sync_runs").fetchall()
        assert {s for s, _ in errors} == {"cloud", "dc", "ado"} and all(e for _, e in errors)
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            assert _leaks(repr(rows), forms) == [], table
    finally:
        con.close()
    for path in tmp_path.glob("w.duckdb*"):
        raw = path.read_bytes()
        assert [f for f in forms if f.encode() in raw] == [], path

    # every GET route of the API (with a viewer token), and /health without one
    settings = load_settings(config)
    runtime = make_runtime(settings)
    try:
        app = create_app(runtime)
        with TestClient(app, raise_server_exceptions=False) as client:
            anonymous = client.get("/health")
            assert anonymous.status_code == 200
            assert all(s["last_error"] is None for s in anonymous.json()["sources"])
            viewer = client.get("/health", headers={"Authorization": f"Bearer {VIEWER}"})
            assert all("HTTP 400" in s["last_error"] for s in viewer.json()["sources"])
            answers = [anonymous.text, viewer.text]
            # every GET route: the documented ones (the OpenAPI is the contract) and the docs
            spec = client.get("/openapi.json").json()
            documented = {p for p, ops in spec["paths"].items() if "get" in ops}
            undocumented = {
                str(getattr(route, "path", ""))
                for route in app.routes
                if "GET" in (getattr(route, "methods", None) or ())
            }
            paths = sorted(p for p in documented | undocumented if "{" not in p)
            assert "/sync-runs" in paths and "/work-items" in paths
            for path in paths:
                response = client.get(path, headers={"Authorization": f"Bearer {VIEWER}"})
                answers.append(response.text)
                assert _leaks(response.text, forms) == [], path
            runs = client.get("/sync-runs", headers={"Authorization": f"Bearer {VIEWER}"}).json()
            for run in runs:
                one = client.get(
                    f"/sync-runs/{run['run_id']}", headers={"Authorization": f"Bearer {VIEWER}"}
                )
                answers.append(one.text)
        assert _leaks("\n".join(answers), forms) == []
    finally:
        runtime.warehouse.close()
