"""The shipped migrations on the lake: DuckLake's DDL adaptation (no PostgreSQL needed for the
first tests) and the migrated lake tables equal to the DuckDB file's, column for column."""

from __future__ import annotations

import os

import pytest

from pmolens.warehouse.config import ConfigError, settings_from_dict
from pmolens.warehouse.schema import lake_ddl
from pmolens.warehouse.store import Warehouse
from tests.lake.conftest import PASSWORD_ENV, LakeDatabase


def test_lake_ddl_drops_keys_and_indexes_and_moves_sequences() -> None:
    table = (
        "CREATE TABLE IF NOT EXISTS saved_views (\n viewer VARCHAR NOT NULL, name VARCHAR NOT "
        "NULL,\n created TIMESTAMPTZ NOT NULL, PRIMARY KEY (viewer, name)\n )"
    )
    assert lake_ddl(table) == (
        "CREATE TABLE IF NOT EXISTS saved_views (\n viewer VARCHAR NOT NULL, name VARCHAR NOT "
        "NULL,\n created TIMESTAMPTZ NOT NULL\n )",
        None,
    )
    assert lake_ddl("CREATE TABLE t (a INT PRIMARY KEY, b INT UNIQUE, c INT)") == (
        "CREATE TABLE t (a INT, b INT, c INT)",
        None,
    )
    assert lake_ddl("CREATE TABLE t (a INT, UNIQUE (a))") == ("CREATE TABLE t (a INT)", None)
    assert lake_ddl("CREATE SEQUENCE IF NOT EXISTS run_ids START 1") == (None, ("run_ids", 1))
    assert lake_ddl("CREATE UNIQUE INDEX i ON t (a)") == (None, None)
    view = "CREATE OR REPLACE VIEW v AS SELECT a FROM t"
    assert lake_ddl(view) == (view, None)


@pytest.mark.parametrize(
    ("warehouse", "fragment"),
    [
        ({"kind": "ducklake", "data_path": "d"}, "needs catalog"),
        (
            {"kind": "ducklake", "catalog": "host=h dbname=d password=x", "data_path": "d"},
            "password",
        ),
        ({"kind": "ducklake", "catalog": "postgresql://u:pw@h/d", "data_path": "d"}, "password"),
        ({"kind": "ducklake", "catalog": "host=h", "data_path": "gs://bucket/lake"}, "gs://"),
    ],
)
def test_lake_config_errors_name_the_fix(warehouse: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        settings_from_dict({"warehouse": warehouse})


def test_the_migrated_lake_has_the_file_s_tables(lake_database: LakeDatabase, tmp_path) -> None:
    os.environ[PASSWORD_ENV] = lake_database.password
    settings = settings_from_dict(
        {
            "warehouse": {
                "kind": "ducklake",
                "catalog": lake_database.libpq,
                "password_env": PASSWORD_ENV,
                "data_path": "data",
            }
        },
        base_dir=tmp_path,
    )
    describe = (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() ORDER BY table_name, ordinal_position"
    )
    with Warehouse(":memory:") as file:
        expected = file.query(describe).drop("table_catalog", strict=False)
    with Warehouse.open(settings) as lake:
        assert lake.lake is not None
        got = lake.query(describe)
        assert got.to_dicts() == expected.to_dicts()
        # ids from the catalog database's sequence, run by run
        first = lake.begin_run("s", "full", None)
        second = lake.begin_run("s", "full", None)
        assert (first, second) == (1, 2)
        assert lake.query("SELECT outcome FROM sync_runs ORDER BY run_id")["outcome"].to_list() == [
            "abandoned",
            "running",
        ]
    with Warehouse.open(settings) as again:  # a second open migrates nothing
        assert again.query("SELECT count(*) AS n FROM schema_version")["n"][0] == 5


def test_a_catalog_address_becomes_libpq_keywords_with_the_password_quoted() -> None:
    from pmolens.warehouse.lake import keyword_dsn

    dsn = keyword_dsn("postgresql://pmolens@db:5432/lake", "it's a secret")
    assert "postgresql://" not in dsn
    assert {"user=pmolens", "dbname=lake", "host=db", "port=5432"} <= set(dsn.split()[:4])
    assert dsn.endswith("password='it\\'s a secret'")
    assert keyword_dsn("host=db dbname=lake user=pmolens") == "user=pmolens dbname=lake host=db"


def test_registering_the_same_config_again_writes_nothing_to_the_lake(
    lake_database: LakeDatabase, tmp_path
) -> None:
    """Every worker registers the config as it starts; on the lake that is a write under the
    lake-wide lock and a snapshot, so it is only done when the organisations or sources differ."""
    os.environ[PASSWORD_ENV] = lake_database.password
    config = {
        "warehouse": {
            "kind": "ducklake",
            "catalog": lake_database.libpq,
            "password_env": PASSWORD_ENV,
            "data_path": "data",
        },
        "organisations": [{"name": "Northwind"}],
        "sources": [
            {
                "name": "nw",
                "kind": "jira_dc",
                "organisation": "Northwind",
                "base_url": "https://jira.northwind.example",
                "token_env": "PMOLENS_NW_TOKEN",
            }
        ],
    }
    snapshots = "SELECT count(*) AS n FROM ducklake_snapshots('lake')"
    with Warehouse.open(settings_from_dict(config, base_dir=tmp_path)) as lake:
        lake.register_config(settings_from_dict(config, base_dir=tmp_path))
        before = lake.query(snapshots)["n"][0]
        lake.register_config(settings_from_dict(config, base_dir=tmp_path))
        assert lake.query(snapshots)["n"][0] == before
        config["sources"][0]["base_url"] = "https://jira2.northwind.example"
        lake.register_config(settings_from_dict(config, base_dir=tmp_path))
        assert lake.query(snapshots)["n"][0] == before + 1
        assert lake.query("SELECT base_url FROM sources")["base_url"].to_list() == [
            "https://jira2.northwind.example"
        ]
