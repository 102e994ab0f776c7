"""The PostgreSQL fixture itself: a real server, a password for ``pmolens``, fresh databases."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.lake.conftest import ROLE, LakeDatabase, PostgresServer


def query(database: LakeDatabase, sql: str, password: str | None) -> str:
    """One statement over TCP as ``pmolens``: psycopg when installed, else psql."""
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if psycopg is not None:
        with psycopg.connect(database.dsn, password=password or "", connect_timeout=10) as conn:
            cursor = conn.execute(sql)
            row = cursor.fetchone() if cursor.description else None
            return "" if row is None else str(row[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = password or ""
    env["PGCONNECT_TIMEOUT"] = "10"
    done = subprocess.run(
        ["psql", "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-d", database.dsn, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ConnectionError(done.stderr.strip())
    return done.stdout.strip()


def test_server_runs_as_a_real_postgresql(postgres: PostgresServer) -> None:
    assert postgres.running
    assert int(postgres.psql("SHOW server_version_num")) >= 130000  # DROP DATABASE ... FORCE
    assert postgres.psql("SHOW fsync") == "off"  # start-up and commits stay fast
    assert postgres.psql("SHOW listen_addresses") == "127.0.0.1"


def test_pmolens_connects_with_its_password(lake_database: LakeDatabase) -> None:
    assert "@" in lake_database.dsn and ":" not in lake_database.dsn.split("//")[1].split("@")[0]
    assert lake_database.password not in lake_database.dsn
    who = query(
        lake_database, "SELECT current_user || '/' || current_database()", lake_database.password
    )
    assert who == f"{ROLE}/{lake_database.name}"


@pytest.mark.parametrize("password", [None, "not-the-password"])
def test_pmolens_is_refused_without_the_password(
    lake_database: LakeDatabase, password: str | None
) -> None:
    with pytest.raises(Exception, match="password"):
        query(lake_database, "SELECT 1", password)


def test_each_test_gets_a_fresh_database_it_owns(
    postgres: PostgresServer, lake_database: LakeDatabase
) -> None:
    owner = postgres.psql(
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{lake_database.name}'"
    )
    assert owner == ROLE
    tables = postgres.psql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        database=lake_database.name,
    )
    assert tables == "0"
    query(lake_database, "CREATE TABLE probe (id int)", lake_database.password)  # pmolens may write
    other = postgres.create_database()
    try:
        assert other.name != lake_database.name
    finally:
        postgres.drop_database(other.name)
    gone = postgres.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{other.name}'")
    assert gone == "0"


def test_advisory_locks_are_exclusive_across_sessions(postgres: PostgresServer) -> None:
    """What the sync workers rely on to refuse a second worker for one source: a lock held by
    one live session is refused to another, and freed when that session ends."""
    holder = subprocess.Popen(
        postgres.psql_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write("SELECT pg_advisory_lock(15);\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == ""  # pg_advisory_lock returns void
        assert postgres.psql("SELECT pg_try_advisory_lock(15)") == "f"
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert postgres.psql("SELECT pg_try_advisory_lock(15)") == "t"
