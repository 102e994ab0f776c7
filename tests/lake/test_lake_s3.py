"""A lake whose data files are on S3: a real S3-compatible server (moto's, on loopback) and a real
PostgreSQL catalog (tests/lake/conftest.py).

Sync workers (`pmolens sync --source X` processes) write the Parquet files into the bucket
through DuckDB's httpfs (loaded from its PyPI package, like ducklake and postgres); the API reads
the same figures as from a lake on a directory; the secret access key, read from the environment
variable the config names, appears in no output, log, sync run, API answer or catalog row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.api.demo import write_config
from pmolens.api.runtime import make_runtime
from pmolens.pipeline.refresh import refresh_after_sync
from pmolens.pipeline.sync import sync_all
from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings
from pmolens.warehouse.config import ConfigError, load_settings, settings_from_dict
from pmolens.warehouse.secrets import MASK, forms, redact
from pmolens.warehouse.store import Warehouse
from pmolens.warehouse.transfer import expire
from tests.lake.conftest import PASSWORD_ENV, LakeDatabase, PostgresServer, free_port

SIZE = 480  # the simulator's smallest chain: 120 items for its smallest tracker
SOURCES = ("northwind-jira", "fabrikam-jira-dc", "contoso-ado")
BUCKET = "pmolens-lake"
KEY_ID_ENV = "PMOLENS_TEST_S3_KEY_ID"  # not the AWS defaults: the config's names are used
SECRET_ENV = "PMOLENS_TEST_S3_SECRET"
KEY_ID = "pmolens-test-key"
COUNTS = "SELECT source, count(*) AS n FROM work_items WHERE NOT is_deleted GROUP BY source"
ROUTES = (
    "/portfolio",
    "/flow",
    "/dependencies/red-lines",
    "/alignment/scores",
    *(f"/work-items?source={s}" for s in SOURCES),
)


@dataclass
class S3Server:
    url: str  # http://127.0.0.1:<port>

    @property
    def endpoint(self) -> str:
        return self.url.removeprefix("http://")

    def keys(self, bucket: str = BUCKET) -> list[str]:
        """Every object key in the bucket (ListObjectsV2, page by page)."""
        found: list[str] = []
        token: str | None = None
        while True:
            params = {"list-type": "2", **({"continuation-token": token} if token else {})}
            answer = httpx.get(f"{self.url}/{bucket}", params=params, timeout=30)
            answer.raise_for_status()
            root = ET.fromstring(answer.text)
            space = {"s3": root.tag.split("}")[0].strip("{")} if "}" in root.tag else {}
            prefix = "s3:" if space else ""
            found += [
                k.text or "" for k in root.iterfind(f".//{prefix}Contents/{prefix}Key", space)
            ]
            more = root.find(f"{prefix}IsTruncated", space)
            token_node = root.find(f"{prefix}NextContinuationToken", space)
            if more is None or more.text != "true" or token_node is None:
                return found
            token = token_node.text


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server in a thread on a free loopback port, with one empty bucket."""
    server_module = pytest.importorskip("moto.server", reason="moto[server] (the dev extra)")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        httpx.put(f"{url}/{BUCKET}", timeout=30).raise_for_status()
        yield S3Server(url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=11, size=SIZE) as simulator:
        yield simulator


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "s3-" + secrets.token_urlsafe(30)
    monkeypatch.setenv(KEY_ID_ENV, KEY_ID)
    monkeypatch.setenv(SECRET_ENV, value)
    return value


def lake_config(
    sim: Simulator, database: LakeDatabase, path: Path, **warehouse: Any
) -> tuple[Path, dict[str, Any]]:
    data = demo_settings(sim.url)
    data["warehouse"] = {
        "kind": "ducklake",
        "catalog": database.libpq,
        "password_env": PASSWORD_ENV,
        **warehouse,
    }
    data["server"] = {"auth": "none", "host": "127.0.0.1"}
    path.mkdir(parents=True, exist_ok=True)
    config = path / "pmolens.toml"
    write_config(data, config)
    return config, data


def on_s3(s3: S3Server, prefix: str = "lake") -> dict[str, Any]:
    return {
        "data_path": f"s3://{BUCKET}/{prefix}/",
        "s3_key_id_env": KEY_ID_ENV,
        "s3_secret_env": SECRET_ENV,
        "s3_endpoint": s3.endpoint,
        "s3_use_ssl": False,  # moto answers plain http on loopback
        "s3_region": "eu-west-1",
    }


def figures(config: Path) -> dict[str, Any]:
    """The API's answers on the routes a steering reader opens, without moments of reading."""
    settings = load_settings(config)
    runtime = make_runtime(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            answers = {}
            for route in ROUTES:
                answer = client.get(route)
                assert answer.status_code == 200, (route, answer.text)
                answers[route] = answer.json()
            texts = [client.get(p).text for p in ("/health", "/sync-runs", "/sources")]
    finally:
        runtime.warehouse.close()
    return {"answers": _without_moments(answers), "texts": texts}


MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _without_moments(value: Any) -> Any:
    """Timestamps of when something was synced or computed differ between two lakes; the figures
    do not (dates of the items themselves come from the simulator and stay)."""
    if isinstance(value, dict):
        return {
            k: _without_moments(v)
            for k, v in value.items()
            if k not in {"generated", "computed", "as_of", "synced", "last_sync", "generation"}
        }
    if isinstance(value, list):
        return [_without_moments(v) for v in value]
    return value


def catalog_dump(postgres: PostgresServer, database: str) -> str:
    """Every row of the catalog database, as pg_dump writes it."""
    done = subprocess.run(
        [
            str(postgres.bindir / "pg_dump"),
            "--data-only",
            *("-h", str(postgres.root), "-p", str(postgres.port), "-U", "postgres", database),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_a_lake_on_s3_syncs_reads_like_a_directory_lake_and_never_shows_its_secret(
    postgres: PostgresServer,
    s3: S3Server,
    sim: Simulator,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    file_db, s3_db = postgres.create_database(), postgres.create_database()
    monkeypatch.setenv(PASSWORD_ENV, file_db.password)
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)

    # the reference: the same chain in a lake on a directory, synced in this process
    directory_config, _ = lake_config(sim, file_db, tmp_path / "dir", data_path="data")
    settings = load_settings(directory_config)
    with Warehouse.open(settings) as warehouse:
        assert all(o.ok for o in asyncio.run(sync_all(warehouse, settings, full=True)))
        refresh_after_sync(warehouse, settings)
        expected = dict(warehouse.query(COUNTS).iter_rows())
    assert set(expected) == set(SOURCES)

    # the lake on S3: one `pmolens sync --source X` worker process per source, side by side
    s3_config, _ = lake_config(sim, s3_db, tmp_path / "s3", **on_s3(s3))
    with Warehouse.open(load_settings(s3_config)):  # migrate once before the workers start
        pass
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "pmolens.api.cli", "sync", "-s", source, "-c", str(s3_config)],
            env=env,
            cwd=s3_config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for source in SOURCES
    ]
    outputs = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        outputs.append(out)
        assert worker.returncode == 0, out

    # the data files are Parquet objects under the prefix in the bucket, none on local disk
    keys = s3.keys()
    parquet = [k for k in keys if k.endswith(".parquet")]
    assert parquet and all(k.startswith("lake/") for k in keys), keys
    assert any("/work_items/" in k for k in parquet), parquet
    assert not list((tmp_path / "s3").rglob("*.parquet"))

    with Warehouse.open(load_settings(s3_config)) as warehouse:
        assert redact(f"key {secret}") == f"key {MASK}"  # remembered when it was read
        assert dict(warehouse.query(COUNTS).iter_rows()) == expected
        runs = warehouse.query("SELECT source, outcome, error FROM sync_runs").rows()
        assert sorted((s, o) for s, o, _ in runs) == sorted((s, "success") for s in SOURCES)
        run_errors = repr(runs)
        persisted = warehouse.query("SELECT count(*) AS n FROM duckdb_secrets() WHERE persistent")[
            "n"
        ][0]
        assert persisted == 0

    # the API answers the same figures from either lake
    on_directory, on_bucket = figures(directory_config), figures(s3_config)
    assert on_bucket["answers"] == on_directory["answers"]
    totals = {s: on_bucket["answers"][f"/work-items?source={s}"]["total"] for s in SOURCES}
    assert totals == expected
    assert on_bucket["answers"]["/portfolio"]["nodes"]  # figures, not two empty answers

    # `pmolens warehouse expire` deletes the objects no kept snapshot needs, from the bucket:
    # a later run and its refresh replace the results' files, which expire then removes
    settings = load_settings(s3_config)
    with Warehouse.open(settings) as warehouse:
        assert all(o.ok for o in asyncio.run(sync_all(warehouse, settings, sources=[SOURCES[1]])))
        refresh_after_sync(warehouse, settings)
    before = set(s3.keys())
    with Warehouse.open(settings) as warehouse:
        done = expire(warehouse, 0)
        assert dict(warehouse.query(COUNTS).iter_rows()) == expected
    after = set(s3.keys())
    assert done.files > 0 and after < before, (done, len(before), len(after))

    # the secret is nowhere: worker output, logs, sync runs, API answers, catalog rows
    seen = "\n".join(
        [
            *outputs,
            caplog.text,
            run_errors,
            *on_bucket["texts"],
            repr(on_bucket["answers"]),
            catalog_dump(postgres, s3_db.name),
        ]
    )
    assert [f for f in forms(secret) if f in seen] == []
    assert f"s3://{BUCKET}/lake/" in catalog_dump(postgres, s3_db.name)  # the data path is kept


def test_a_missing_s3_credential_is_a_one_line_config_error(
    lake_database: LakeDatabase,
    s3: S3Server,
    sim: Simulator,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, lake_database.password)
    config, _ = lake_config(sim, lake_database, tmp_path, **on_s3(s3, "missing"))
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError) as raised:
        Warehouse.open(load_settings(config))
    message = str(raised.value)
    assert "\n" not in message
    assert SECRET_ENV in message and "warehouse.s3_secret_env" in message
    # the same from the command line: one line, the variable named, exit code 2
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "pmolens.api.cli", "sync", "-c", str(config)],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    shown = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, shown
    assert len(shown.splitlines()) == 1 and SECRET_ENV in shown, shown
    assert secret not in shown
    monkeypatch.delenv(KEY_ID_ENV)
    monkeypatch.setenv(SECRET_ENV, secret)
    with pytest.raises(
        ConfigError, match=f"warehouse.s3_key_id_env: environment variable {KEY_ID_ENV}"
    ):
        Warehouse.open(load_settings(config))


@pytest.mark.parametrize(
    ("warehouse", "fragment"),
    [
        ({"data_path": "gs://bucket/lake"}, r"not gs:// - write e\.g\. data_path = \"s3://"),
        ({"data_path": "s3:///lake"}, "does not start with a bucket name"),
        (
            {"data_path": "s3://b-1/lake", "s3_endpoint": "http://minio:9000"},
            r'warehouse.s3_endpoint: write host\[:port\] without the scheme, e.g. s3_endpoint = "minio:9000"',
        ),
        ({"data_path": "s3://b-1/lake", "s3_endpoint": "minio 9000"}, "is not host"),
        ({"data_path": "s3://b-1/lake", "s3_url_style": "virtual"}, "s3_url_style"),
        ({"data_path": "s3://b-1/lake", "s3_secret_env": "my secret"}, "s3_secret_env"),
        (
            {"data_path": "data", "s3_endpoint": "minio:9000"},
            "s3_endpoint: only for an S3 data_path",
        ),
    ],
)
def test_s3_config_errors_name_the_key_and_the_fix(warehouse: dict, fragment: str) -> None:
    data = {"warehouse": {"kind": "ducklake", "catalog": "host=db dbname=pmolens", **warehouse}}
    with pytest.raises(ConfigError, match=fragment):
        settings_from_dict(data)


def test_an_s3_data_path_is_kept_as_a_url_with_defaults_for_aws() -> None:
    settings = settings_from_dict(
        {"warehouse": {"kind": "ducklake", "catalog": "host=db", "data_path": "s3://b-1/lake"}}
    )
    assert settings.lake_data_path == "s3://b-1/lake/"
    config = settings.warehouse
    assert (config.s3_key_id_env, config.s3_secret_env) == (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
    assert config.on_s3 and config.s3_endpoint is None and config.s3_use_ssl
