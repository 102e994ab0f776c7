"""A real PostgreSQL for the lake tests: Debian's server binaries, a throwaway cluster per session.

Why real: the DuckLake catalog, advisory locks and concurrent commits are PostgreSQL behaviour
that no fake reproduces. The cluster is ``initdb``-ed into a temporary directory, started with
``pg_ctl`` on a free loopback port (socket in that directory, no durability: fsync off), run as
the ``postgres`` system user when the tests run as root (PostgreSQL refuses to run as root), and
stopped at the end of the session whatever happened.

Authentication: the superuser ``postgres`` is trusted on loopback (the fixture's own admin work);
the role ``pmolens`` must give its password (scram-sha-256), so a test that forgets to read the
password from ``password_env`` fails as it would in production.

Where the binaries cannot be found the tests are skipped with the reason, except under CI
(``CI=true``): ``.ci/run`` installs the package, so missing binaries there are an error, and a
green CI cannot hide skipped lake tests.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ROLE = "pmolens"
PASSWORD_ENV = "PMOLENS_LAKE_PASSWORD"  # the name the deploy docs and the example config use
HOST = "127.0.0.1"
START_TIMEOUT_S = 30


def _has_server(bindir: Path) -> bool:
    return all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql"))


def find_bindir() -> Path | None:
    """Where initdb/pg_ctl/postgres/psql live: ``pg_config --bindir`` (when it is the server's),
    Debian's /usr/lib/postgresql/<version>/bin (newest first), or initdb on PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
        except (subprocess.SubprocessError, OSError):
            pass

    def version(path: str) -> tuple[int, ...]:
        digits = Path(path).parent.name.split(".")
        return tuple(int(d) for d in digits if d.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates.extend(Path(p) for p in debian)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    return next((c for c in candidates if _has_server(c)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LakeDatabase:
    """A fresh database owned by ``pmolens``. ``dsn`` carries no password: give ``password``
    through the environment variable the config names (``PASSWORD_ENV``)."""

    name: str
    dsn: str  # postgresql://pmolens@127.0.0.1:<port>/<name>
    password: str
    host: str
    port: int
    user: str = ROLE

    @property
    def libpq(self) -> str:
        """The same target as libpq keywords (what DuckDB's postgres extension also accepts)."""
        return f"host={self.host} port={self.port} dbname={self.name} user={self.user}"


@dataclass
class PostgresServer:
    bindir: Path
    root: Path  # the temporary directory: data/, the socket, the log
    port: int
    password: str  # of the role ``pmolens``
    as_user: str | None  # the system user postgres runs as (None: the current user)
    host: str = HOST
    running: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A server binary, as the user that owns the cluster."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self.as_user, "--", *command]
            else:
                command = ["su", self.as_user, "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(
            command,
            cwd=self.root,  # postgres cannot read the tests' working directory as another user
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"{self._log_tail()}"
            )
        return done

    def _log_tail(self) -> str:
        try:
            return "\n--- postgres.log ---\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        except OSError:
            return ""

    def psql_command(self, database: str = "postgres") -> list[str]:
        """psql as the superuser over the socket (trusted), unaligned, tuples only."""
        return [
            str(self.bindir / "psql"),
            *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d", database),
        ]

    def psql(self, sql: str, database: str = "postgres") -> str:
        """One statement as the superuser; its output."""
        done = subprocess.run(
            [*self.psql_command(database), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                f"-c listen_addresses={self.host}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
                "-c max_connections=200",  # workers, replicas and their pools at once
                "-c dynamic_shared_memory_type=mmap",
            ]
        )
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        self.running = True

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def create_database(self) -> LakeDatabase:
        name = f"lake_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return LakeDatabase(
            name=name,
            dsn=f"postgresql://{ROLE}@{self.host}:{self.port}/{name}",
            password=self.password,
            host=self.host,
            port=self.port,
        )

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


HBA = f"""\
# written by tests/lake/conftest.py
local all all                trust
host  all {ROLE} 127.0.0.1/32 scram-sha-256
host  all {ROLE} ::1/128      scram-sha-256
host  all all   127.0.0.1/32 trust
host  all all   ::1/128      trust
"""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why (and what to install)."""


NO_BINARIES = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install Debian's "
    "`postgresql` package (apt-get install postgresql)"
)


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the lake tests: .ci/run installs postgresql)")
    pytest.skip(reason)


def start_server(bindir: Path | None = None) -> PostgresServer:
    """A throwaway cluster, started (also for bench/lake_bench.py); ``stop`` and remove
    ``root`` when done. Raises PostgresUnavailable when it cannot run here."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise PostgresUnavailable(NO_BINARIES)
    as_user = None
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root and there is no `postgres` system user to run PostgreSQL"
            ) from None
        as_user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="pmolens-pg-"))  # under /tmp: reachable by `postgres`
    if as_user:
        shutil.chown(root, user=as_user, group=None)
        os.chmod(root, 0o700)
    server = PostgresServer(
        bindir=bindir, root=root, port=0, password=secrets.token_urlsafe(18), as_user=as_user
    )
    server.run(
        "initdb",
        "-D",
        str(server.data),
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--auth=trust",
        "--no-sync",
        "--no-instructions",
    )
    (server.data / "pg_hba.conf").write_text(HBA)
    if as_user:
        shutil.chown(server.data / "pg_hba.conf", user=as_user, group=None)
    last: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        server.port = free_port()
        try:
            server.start()
            break
        except RuntimeError as exc:
            last = exc
    else:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {last}")
    quoted = server.password.replace("'", "''")
    server.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{quoted}'")
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL for this test session; stopped and removed at its end."""
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        _missing(str(exc))
    atexit.register(server.stop)  # also when the session is interrupted before teardown
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def lake_database(postgres: PostgresServer) -> Iterator[LakeDatabase]:
    """A fresh, empty database owned by ``pmolens``, dropped after the test."""
    database = postgres.create_database()
    try:
        yield database
    finally:
        if postgres.running:
            with contextlib.suppress(RuntimeError):  # the cluster goes at the session's end anyway
                postgres.drop_database(database.name)
