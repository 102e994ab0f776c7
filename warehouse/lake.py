"""The lake kind: a DuckLake whose catalog is a PostgreSQL database, for sync workers and API
replicas on several machines (``[warehouse] kind = "ducklake"``).

DuckDB itself reads and writes the lake (the ``ducklake`` extension, with the catalog reached
through the ``postgres`` extension); PostgreSQL also coordinates the processes, through session
advisory locks: one worker per source (``PgLock("source:<name>")``), one writing transaction at
a time (``Lake.writing``), one results refresh, one scheduler leader. A lock dies with its
session, so a killed process never leaves one behind.

The extensions come from their PyPI packages (``duckdb-extension-ducklake``,
``duckdb-extension-postgres``, ``duckdb-extension-httpfs``, built for exactly the pinned DuckDB):
they are loaded from a private extension directory that links to the installed files, with
auto-install and auto-load off, so nothing is ever downloaded at run time. The postgres
extension's internal name is ``postgres_scanner``, so its file is linked under that name.

Data files on S3 (``data_path = "s3://bucket/prefix/"``, also an S3-compatible store through
``s3_endpoint``): httpfs is loaded and every connection gets a TEMPORARY S3 secret (in memory,
never persisted) before the ATTACH, its values passed as parameters, never written into SQL text;
the secret access key is remembered for redaction when it is read from the environment.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pmolens.warehouse.config import ConfigError, Settings
from pmolens.warehouse.secrets import redact

log = logging.getLogger("pmolens.lake")

#: internal extension name -> the PyPI package that ships its file
EXTENSIONS = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres",
    "httpfs": "duckdb_extension_httpfs",  # data files on S3 / an S3-compatible store
}
WRITE_WAIT = 300.0  # seconds a writer waits for another process's write transaction
WRITE_LOCK = "write"  # the advisory lock of ``Lake.writing`` (key ``pmolens:write``)


class LakeError(RuntimeError):
    """The lake cannot be reached or used; the message is safe to show (secrets masked)."""


def _platform() -> str:
    con = duckdb.connect(":memory:")
    try:
        row = con.execute("PRAGMA platform").fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0])


def extension_directory() -> Path:
    """A directory laid out as DuckDB expects (``v<version>/<platform>/<name>.duckdb_extension``)
    whose files link to the extension packages' files. Per user, made once, safe to race on."""
    version = duckdb.__version__
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = base / "pmolens" / "duckdb-extensions" / f"v{version}" / _platform()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, package in EXTENSIONS.items():
        spec = importlib.util.find_spec(package)
        folder = (
            Path(spec.origin).parent / "extensions" / f"v{version}"
            if spec and spec.origin
            else None
        )
        files = sorted(folder.glob("*.duckdb_extension")) if folder and folder.is_dir() else []
        if not files:
            raise LakeError(
                f"the DuckDB extension {name} for duckdb {version} is not installed: pip install "
                f"{package.replace('_', '-')}=={version} (the lake never downloads extensions)"
            )
        link = target / f"{name}.duckdb_extension"
        if link.is_symlink() and link.resolve() == files[0].resolve():
            continue
        temporary = target / f".{name}.{os.getpid()}.{threading.get_ident()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(files[0])
        os.replace(temporary, link)  # atomic: a racing process sees the old or the new link
    return target.parent.parent


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PgLock:
    """A PostgreSQL session advisory lock on its own connection: held until ``release`` or until
    the process (and so its session) ends - a kill -9 included."""

    def __init__(self, lake: Lake, name: str) -> None:
        self.lake = lake
        self.name = name
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        return self._take(None)

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; False when another session still holds it."""
        return self._take(timeout)

    def _take(self, timeout: float | None) -> bool:
        if self._conn is not None:
            return True
        import psycopg

        conn = self.lake.pg(f"pmolens {self.name} pid {os.getpid()}")
        try:
            if timeout is None:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key]
                ).fetchone()
                taken = bool(row and row[0])
            else:
                conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
                try:
                    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [self.key])
                    taken = True
                except psycopg.errors.LockNotAvailable:
                    taken = False
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    @property
    def key(self) -> str:
        return f"pmolens:{self.name}"

    def alive(self) -> bool:
        """Whether the session holding the lock still answers (a leader checks before acting)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:
            self.release()
            return False

    def wait_behind(self, name: str, timeout: float) -> bool:
        """Wait (on this lock's session, which must be held) until every process that holds or
        already waits for the lock ``name`` has given it up: take it and give it back at once.
        PostgreSQL queues a request behind the sessions already waiting, so this waits for them
        too but not for later ones. False when they kept it longer than ``timeout`` seconds."""
        if self._conn is None:
            raise RuntimeError(f"wait_behind needs the lock {self.name} held")
        import psycopg

        self._conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
        try:
            self._conn.execute(
                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"pmolens:{name}"]
            )
        except psycopg.errors.LockNotAvailable:
            return False
        self._conn.execute(
            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"pmolens:{name}"]
        )
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def keyword_dsn(catalog: str, password: str | None = None) -> str:
    """The catalog as libpq keywords (a ``postgresql://`` address converted), with the password
    quoted as libpq wants it: DuckLake's ATTACH takes the keyword form."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(catalog)
    if password:
        params["password"] = password
    return make_conninfo("", **params)


@dataclass(frozen=True)
class S3Access:
    """How a connection reaches the lake's data files on S3 (or an S3-compatible store). The
    secret access key is never shown: not in ``repr``, not in SQL text, not in messages."""

    key_id: str
    secret: str = field(repr=False)
    scope: str  # the data_path URL: the secret is used for it only
    endpoint: str | None = None  # host:port; None = AWS
    region: str | None = None
    url_style: str = "vhost"
    use_ssl: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Access:
        config = settings.warehouse
        key_id, secret = config.s3_credentials()
        return cls(
            key_id=key_id,
            secret=secret,
            scope=str(settings.lake_data_path),
            endpoint=config.s3_endpoint,
            region=config.s3_region,
            url_style=config.s3_url_style or ("path" if config.s3_endpoint else "vhost"),
            use_ssl=config.s3_use_ssl,
        )

    def create_secret(self, con: duckdb.DuckDBPyConnection) -> None:
        """A TEMPORARY secret of this connection (gone when it closes), values as parameters."""
        options = {"KEY_ID": self.key_id, "SECRET": self.secret, "SCOPE": self.scope}
        options["URL_STYLE"] = self.url_style
        if self.endpoint:
            options["ENDPOINT"] = self.endpoint
        if self.region:
            options["REGION"] = self.region
        listed = ", ".join(f"{name} ?" for name in options)
        con.execute(
            f"CREATE OR REPLACE TEMPORARY SECRET pmolens_lake_s3 (TYPE s3, {listed}, "
            f"USE_SSL {'true' if self.use_ssl else 'false'})",
            list(options.values()),
        )


class Lake:
    """One lake: how to reach its catalog and data, its locks and its id sequences."""

    def __init__(
        self,
        catalog: str,
        password: str | None,
        data_path: Path | str,
        s3: S3Access | None = None,
    ) -> None:
        self.catalog = catalog
        self._password = password
        self.data_path = data_path  # a directory, or an s3:// URL (then ``s3`` says how)
        self._s3 = s3
        self._session: Any = None  # the write lock and sequences
        self._session_lock = threading.Lock()
        self._writing = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        config = settings.warehouse
        if config.kind != "ducklake" or not config.catalog:
            raise ConfigError('warehouse: kind = "ducklake" with a catalog is needed here')
        s3 = S3Access.from_settings(settings) if config.on_s3 else None
        return cls(config.catalog, config.password(), settings.lake_data_path, s3)

    def describe(self) -> str:
        """Where the lake is, for messages (never the password)."""
        return f"ducklake:postgres:{self.catalog} (data {self.data_path})"

    def pg(self, application: str = "pmolens") -> Any:
        """A new autocommit psycopg connection to the catalog database."""
        import psycopg

        try:
            return psycopg.connect(
                self.catalog,
                password=self._password,
                autocommit=True,
                application_name=application[:63],
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise LakeError(
                redact(f"the lake's catalog {self.catalog!r} did not answer: {exc}".strip())
            ) from None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the lake attached as ``lake`` and in use."""
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "extension_directory": str(extension_directory()),
            },
        )
        try:
            con.execute("LOAD ducklake")
            con.execute("LOAD postgres_scanner")
            con.execute("SET TimeZone = 'UTC'")
            if self._s3 is not None:
                con.execute("LOAD httpfs")
                self._s3.create_secret(con)
                data_path = str(self.data_path)
            else:
                Path(self.data_path).mkdir(parents=True, exist_ok=True)
                data_path = str(self.data_path) + os.sep
            con.execute(f"ATTACH {self.attach_target()} AS lake (DATA_PATH {_literal(data_path)})")
            con.execute("USE lake")
        except duckdb.Error as exc:
            con.close()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LakeError(redact(f"cannot open the lake {self.describe()}: {first}")) from None
        return con

    def attach_target(self) -> str:
        """The ATTACH string literal (holds the password: never log it)."""
        return _literal("ducklake:postgres:" + keyword_dsn(self.catalog, self._password))

    def lock(self, name: str) -> PgLock:
        return PgLock(self, name)

    # ------------------------------------------------------------------ one writer at a time

    def _pg_session(self) -> Any:
        if self._session is None or self._session.closed:
            self._session = self.pg(f"pmolens writer pid {os.getpid()}")
        return self._session

    @contextlib.contextmanager
    def writing(self, timeout: float = WRITE_WAIT) -> Iterator[None]:
        """Hold the lake's write lock (one writing transaction in the whole lake at a time; the
        caller serialises its own threads). DuckLake would refuse the second of two overlapping
        transactions that delete from the same table; waiting here is cheaper than redoing a
        sync's commit, and conflicts with other writers are still retried by the caller."""
        if self._writing:
            self._writing += 1
            try:
                yield
            finally:
                self._writing -= 1
            return
        with self._session_lock:
            session = self._pg_session()
            session.execute(f"SET lock_timeout = {int(timeout * 1000)}")
            import psycopg

            try:
                session.execute(
                    "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"pmolens:{WRITE_LOCK}"]
                )
            except psycopg.errors.LockNotAvailable:
                raise LakeError(
                    f"another process kept the lake's write lock for {timeout:.0f} s"
                ) from None
        self._writing = 1
        try:
            yield
        finally:
            self._writing = 0
            with self._session_lock:
                try:
                    session.execute(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                        [f"pmolens:{WRITE_LOCK}"],
                    )
                except Exception:  # the session is gone, and with it the lock
                    self._session = None

    def create_sequence(self, name: str, start: int = 1) -> None:
        """A PostgreSQL sequence for ids unique across every process (DuckLake has none)."""
        with self._session_lock:
            self._pg_session().execute(
                f"CREATE SEQUENCE IF NOT EXISTS pmolens_{name} START {int(start)}"
            )

    def next_id(self, name: str) -> int:
        with self._session_lock:
            row = self._pg_session().execute(f"SELECT nextval('pmolens_{name}')").fetchone()
        assert row is not None
        return int(row[0])

    def move_sequence_past(self, name: str, value: int) -> None:
        """Never hand out an id at or below ``value`` (after copying rows in)."""
        with self._session_lock:
            self._pg_session().execute(
                f"SELECT setval('pmolens_{name}', greatest(%s, "
                f"(SELECT last_value FROM pmolens_{name})))",
                [max(1, int(value))],
            )

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()
