"""The DuckDB warehouse: open (migrate), commit a sync atomically, read frames back.

Invariants:
- a sync's data, its deletions, its run record and its cursor are committed in ONE transaction,
  so the cursor is never ahead of committed data and a failed or killed sync leaves the tables
  exactly as they were;
- loads are Arrow batches, never row by row;
- readers use their own cursor on the same database and see the state before or after a commit,
  never half of one (DuckDB MVCC).

The same class serves the lake kind (``warehouse.lake``: DuckLake on PostgreSQL, several
processes on several machines): there each write transaction holds the lake's write lock and is
retried when DuckLake still reports a write-write conflict, run ids come from a PostgreSQL
sequence, a source is synced by one process at a time (``claim_source``), and the generation
counts the committed runs (runs commit out of id order when workers run side by side).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import duckdb
import polars as pl

from pmolens.warehouse.config import ConfigError, CrossLinkPattern, Settings
from pmolens.warehouse.model import SCHEMAS
from pmolens.warehouse.schema import migrate

if TYPE_CHECKING:
    from pmolens.warehouse.lake import Lake, PgLock

_MAX_PROBLEM_TEXT = 4000
LAKE_ATTEMPTS = 6  # a write transaction on the lake is tried this often on write-write conflicts
log = logging.getLogger("pmolens.warehouse")

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _retried(
    method: Callable[Concatenate[Warehouse, _P], _T],
) -> Callable[Concatenate[Warehouse, _P], _T]:
    """On the lake, run a whole write method again when DuckLake refuses its commit for a
    write-write conflict (a writer outside pmolens, or a lock lost with its session): bounded,
    with a growing, jittered pause. The method must compute everything inside it again."""

    @functools.wraps(method)
    def run(self: Warehouse, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        attempt = 1
        while True:
            try:
                return method(self, *args, **kwargs)
            except duckdb.TransactionException as exc:
                if self.lake is None or attempt >= LAKE_ATTEMPTS or "conflict" not in str(exc):
                    raise
                log.info("write-write conflict on the lake, try %d again: %s", attempt, exc)
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
                attempt += 1

    return run


@dataclass
class Staged:
    """What one sync run read, as canonical frames, waiting to be committed."""

    work_items: list[pl.DataFrame] = field(default_factory=list)
    links: list[pl.DataFrame] = field(default_factory=list)
    sprints: list[pl.DataFrame] = field(default_factory=list)
    status_changes: list[pl.DataFrame] = field(default_factory=list)
    history_missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # native ids not read (see Batch.skipped)
    problems: list[str] = field(default_factory=list)

    def frame(self, kind: str) -> pl.DataFrame:
        parts = getattr(self, kind)
        if not parts:
            return pl.DataFrame(schema=SCHEMAS[kind])
        return pl.concat(parts, how="vertical_relaxed")

    @property
    def item_count(self) -> int:
        return sum(part.height for part in self.work_items)


@dataclass(frozen=True)
class CommitResult:
    run_id: int
    items: int
    links: int
    sprints: int
    status_changes: int
    deleted: int
    problems: int
    cursor: datetime | None


GENERATION_TTL = 1.0  # seconds a generation read is trusted without asking DuckDB


class Warehouse:
    """One DuckDB file, one writer (this object), many reader cursors - or, with ``lake``, one
    of many processes sharing a DuckLake."""

    def __init__(
        self, path: str | Path, *, read_only: bool = False, lake: Lake | None = None
    ) -> None:
        self.lake = lake
        self._write = threading.RLock()
        self._generation: tuple[float, int] | None = None  # (monotonic time read, value)
        self._sources: dict[str, PgLock] = {}  # the sources this process syncs (lake only)
        self._catalog = "lake"  # what cursors read on the lake: the lake now, or a past snapshot
        self._past: dict[int, Warehouse] = {}
        if lake is not None:
            self.path = lake.describe()
            self._con = lake.connect()
            if not read_only:
                with lake.writing():
                    self.schema_version = migrate(self._con, on_sequence=lake.create_sequence)
            return
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "version number" not in str(exc):
                raise
            raise ConfigError(
                f"warehouse.path: {self.path} was written by a newer DuckDB than this pmolens "
                f"reads (DuckDB {duckdb.__version__}, pinned to match the lake extensions): sync "
                "into a new file (another warehouse.path, then pmolens sync --full) or open it "
                "with the pmolens release that wrote it"
            ) from None
        self._con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self.schema_version = migrate(self._con)

    @classmethod
    def open(cls, settings: Settings, *, read_only: bool = False) -> Warehouse:
        """The warehouse the config names: the DuckDB file, or the lake."""
        if settings.warehouse.kind == "ducklake":
            from pmolens.warehouse.lake import Lake

            return cls("", read_only=read_only, lake=Lake.from_settings(settings))
        return cls(settings.warehouse_path, read_only=read_only)

    def close(self) -> None:
        if self._catalog != "lake" and self.lake is not None:
            return  # a view of the lake's past shares its present's connection
        for lock in self._sources.values():
            lock.release()
        self._sources.clear()
        self._con.close()
        if self.lake is not None:
            self.lake.close()

    # ------------------------------------------------------------------ one worker per source

    def claim_source(self, source: str) -> bool:
        """Whether this process may sync ``source`` now. On the lake: a PostgreSQL advisory lock
        for the source, held until ``release_source`` or the process's end; False when another
        process holds it. The DuckDB file has one writing process, which keeps its own count."""
        if self.lake is None or source in self._sources:
            return True
        lock = self.lake.lock(f"source:{source}")
        if not lock.try_acquire():
            return False
        self._sources[source] = lock
        return True

    def release_source(self, source: str) -> None:
        lock = self._sources.pop(source, None)
        if lock is not None:
            lock.release()

    def _next_id(self, con: duckdb.DuckDBPyConnection, sequence: str) -> int:
        if self.lake is not None:
            return self.lake.next_id(sequence)
        row = con.execute(f"SELECT nextval('{sequence}')").fetchone()
        assert row is not None
        return int(row[0])

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for this thread: reads see only committed data."""
        con = self._con.cursor()
        con.execute("SET TimeZone = 'UTC'")
        if self.lake is not None:
            con.execute(f"USE {self._catalog}")
        return con

    # ------------------------------------------------------------------ the lake's past

    def snapshot_at(self, moment: datetime) -> int | None:
        """The id of the lake's last snapshot at or before ``moment`` (None: not a lake, or
        nothing that old is kept - see ``pmolens warehouse expire``)."""
        if self.lake is None:
            return None
        rows = self.query(
            "SELECT max(snapshot_id) AS s FROM ducklake_snapshots('lake') WHERE snapshot_time <= ?",
            [moment],
        )
        value = rows["s"][0] if rows.height else None
        return None if value is None else int(value)

    def at(self, moment: datetime) -> Warehouse | None:
        """The lake as it was at ``moment`` (DuckLake time travel), read-only: every query of the
        returned object reads that snapshot - the canonical tables, the runs and the results kept
        then. None on the DuckDB file, or when that snapshot is no longer kept."""
        snapshot = self.snapshot_at(moment)
        if self.lake is None or snapshot is None:
            return None
        return self.at_snapshot(snapshot)

    def at_snapshot(self, snapshot: int) -> Warehouse | None:
        """The lake as of one snapshot id, read-only (see ``at``); None on the DuckDB file."""
        if self.lake is None:
            return None
        with self._write:
            past = self._past.get(snapshot)
            if past is None:
                alias = f"lake_at_{snapshot}"
                self._con.execute(
                    f"ATTACH IF NOT EXISTS {self.lake.attach_target()} AS {alias} "
                    f"(SNAPSHOT_VERSION {snapshot}, READ_ONLY)"
                )
                past = Warehouse.__new__(Warehouse)
                past.__dict__.update(self.__dict__)
                past._catalog = alias
                past._generation = None
                past._past = {}
                past._sources = {}
                self._past[snapshot] = past
        return past

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        con = self.cursor()
        try:
            return con.sql(sql, params=params).pl()
        finally:
            con.close()

    def frames(self) -> dict[str, pl.DataFrame]:
        """The canonical tables as polars frames (live items only), read in one snapshot."""
        con = self.cursor()
        try:
            con.execute("BEGIN TRANSACTION")
            out = {
                "work_items": _pl(con, "SELECT * FROM work_items WHERE NOT is_deleted"),
                "links": _pl(con, "SELECT * FROM links"),
                "sprints": _pl(con, _TEAM_SPRINTS_SQL),
                # ordered: a join's output order changes from run to run, and the transforms
                # break ties between changes at the same moment by their row
                "status_changes": _pl(
                    con,
                    "SELECT s.* FROM status_changes s JOIN work_items w USING (item_id) "
                    "WHERE NOT w.is_deleted ORDER BY s.item_id, s.at, s.change_id",
                ),
                "teams": _pl(con, "SELECT * FROM teams"),
                "organisations": _pl(con, "SELECT * FROM organisations"),
                "sources": _pl(con, "SELECT * FROM sources"),
            }
            con.execute("COMMIT")
        finally:
            con.close()
        return {name: _conform(name, df) for name, df in out.items()}

    def generation(self, *, fresh: bool = False) -> int:
        """The id of the last successful sync run: results are cached per generation. On the
        lake, the number of successful runs (workers commit out of run id order).

        Asked on every API request, so the value is kept: a write through this object forgets
        it at once, and it is read again at least every GENERATION_TTL seconds (another
        connection to the same file in this process, or another process on the lake, could have
        committed a sync); ``fresh`` reads it now.
        """
        known = self._generation
        now = time.monotonic()
        if not fresh and known is not None and now - known[0] < GENERATION_TTL:
            return known[1]
        measure = "count(*)" if self.lake is not None else "coalesce(max(run_id), 0)"
        con = self.cursor()
        try:
            row = con.execute(
                f"SELECT {measure} FROM sync_runs WHERE outcome IN ('success', 'partial')"
            ).fetchone()
        finally:
            con.close()
        value = int(row[0]) if row else 0
        self._generation = (now, value)
        return value

    def last_cursor(self, source: str) -> datetime | None:
        rows = self.query("SELECT cursor FROM cursors WHERE source = ?", [source])
        return rows["cursor"][0] if rows.height else None

    # ------------------------------------------------------------------ writing

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction (on the lake: holding the lake's write lock)."""
        with self._write, self.lake.writing() if self.lake else contextlib.nullcontext():
            con = self.cursor()
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                # a refused COMMIT has already ended the transaction: keep its error, not this one
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            finally:
                self._generation = None
                con.close()

    @_retried
    def register_config(self, settings: Settings) -> None:
        """Organisations and sources from the config (never secrets)."""
        orgs = pl.DataFrame(
            [{"organisation": o.name, "description": o.description} for o in settings.organisations]
            or [{"organisation": s.organisation, "description": ""} for s in settings.sources],
            schema=SCHEMAS["organisations"],
        ).unique("organisation", keep="first", maintain_order=True)
        sources = pl.DataFrame(
            [
                {
                    "source": s.name,
                    "kind": s.kind,
                    "organisation": s.organisation,
                    "base_url": s.base_url,
                }
                for s in settings.sources
            ],
            schema=SCHEMAS["sources"],
        )
        if self.lake is not None and all(
            sorted(self.query(f"SELECT * FROM {table}").rows(), key=str)
            == sorted(frame.rows(), key=str)
            for table, frame in (("organisations", orgs), ("sources", sources))
        ):
            # already registered: no lake-wide write for every worker that starts (a sync's
            # commit resolves the cross links again, with the config's patterns)
            return
        with self.transaction() as con:
            con.register("new_orgs", orgs.to_arrow())
            con.register("new_sources", sources.to_arrow())
            con.execute("DELETE FROM organisations")
            con.execute("INSERT INTO organisations SELECT * FROM new_orgs")
            con.execute("DELETE FROM sources")
            con.execute("INSERT INTO sources SELECT * FROM new_sources")
            _resolve_cross_links(con, settings.cross_links)

    @_retried
    def begin_run(self, source: str, mode: str, cursor_before: datetime | None) -> int:
        """Record that a run started (committed at once, so a killed run stays visible)."""
        with self.transaction() as con:
            con.execute(
                "UPDATE sync_runs SET outcome = 'abandoned', finished = now(), "
                "error = 'the process stopped before this run finished' "
                "WHERE source = ? AND outcome = 'running'",
                [source],
            )
            run_id = self._next_id(con, "run_ids")
            con.execute(
                "INSERT INTO sync_runs (run_id, source, mode, started, outcome, cursor_before) "
                "VALUES (?, ?, ?, now(), 'running', ?)",
                [run_id, source, mode, cursor_before],
            )
        return run_id

    @_retried
    def abandon_running(self) -> int:
        """Mark every run still ``running`` abandoned; how many. Only for the one writer at its
        start (``pmolens serve``): a run it did not start was left by a process that died. A
        report delivery it left ``running`` is marked failed the same way. On the lake, only the
        runs of sources no process holds (their worker died), and no delivery (the scheduler's
        leader may be delivering)."""
        if self.lake is not None:
            return self._abandon_unclaimed()
        with self.transaction() as con:
            rows = con.execute(
                "UPDATE sync_runs SET outcome = 'abandoned', finished = now(), "
                "error = 'the process stopped before this run finished' "
                "WHERE outcome = 'running' RETURNING run_id"
            ).fetchall()
            con.execute(
                "UPDATE report_deliveries SET outcome = 'failed', finished = now(), "
                "error = 'the process stopped before this delivery finished' "
                "WHERE outcome = 'running'"
            )
        return len(rows)

    def _abandon_unclaimed(self) -> int:
        running = self.query("SELECT DISTINCT source FROM sync_runs WHERE outcome = 'running'")
        abandoned = 0
        for source in running["source"].to_list():
            if source in self._sources or not self.claim_source(source):
                continue  # a live worker syncs it
            try:
                with self.transaction() as con:
                    rows = con.execute(
                        "UPDATE sync_runs SET outcome = 'abandoned', finished = now(), "
                        "error = 'the process stopped before this run finished' "
                        "WHERE outcome = 'running' AND source = ? RETURNING run_id",
                        [source],
                    ).fetchall()
                abandoned += len(rows)
            finally:
                self.release_source(source)
        return abandoned

    @_retried
    def fail_run(self, run_id: int, error: str, problems: Sequence[str] = ()) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE sync_runs SET outcome = 'failed', finished = now(), error = ?, "
                "problems = ?, problem_text = ? WHERE run_id = ? AND outcome = 'running'",
                [error[:_MAX_PROBLEM_TEXT], len(problems), _problem_text(problems), run_id],
            )

    @_retried
    def commit_sync(
        self,
        run_id: int,
        source: str,
        staged: Staged,
        *,
        live_ids: set[str] | None,
        cursor: datetime | None,
        cross_links: Sequence[CrossLinkPattern] = (),
        max_delete_share: float | None = None,
    ) -> CommitResult:
        """Upsert everything one run read, reconcile deletions, move the cursor: all or nothing.

        ``live_ids``: the source's complete, validated id listing (None: no reconciliation).
        ``max_delete_share``: refuse to mark more than this share of the source's live items
        deleted in one run (the items are kept and the run says so); None lifts the guard.
        """
        items = staged.frame("work_items").unique("item_id", keep="last", maintain_order=True)
        links = staged.frame("links").unique(
            ["source", "link_id"], keep="first", maintain_order=True
        )
        sprints, sprint_teams = _sprints_and_teams(staged.frame("sprints"))
        changes = staged.frame("status_changes").unique(
            ["item_id", "change_id"], keep="last", maintain_order=True
        )
        missing = pl.DataFrame({"item_id": staged.history_missing}, schema={"item_id": pl.String})
        with self.transaction() as con:
            con.register("staged_items", items.to_arrow())
            con.register("staged_links", links.to_arrow())
            con.register("staged_sprints", sprints.to_arrow())
            con.register("staged_sprint_teams", sprint_teams.to_arrow())
            con.register("staged_changes", changes.to_arrow())
            con.register("history_missing", missing.to_arrow())
            columns = ", ".join(f'"{c}"' for c in SCHEMAS["work_items"])
            con.execute(
                "DELETE FROM work_items WHERE item_id IN (SELECT item_id FROM staged_items)"
            )
            con.execute(f"INSERT INTO work_items SELECT {columns} FROM staged_items")
            con.execute(
                """
                DELETE FROM links WHERE source = ? AND (
                    from_item IN (SELECT item_id FROM staged_items)
                    OR to_item IN (SELECT item_id FROM staged_items)
                    OR link_id IN (SELECT link_id FROM staged_links))
                """,
                [source],
            )
            link_columns = ", ".join(f'"{c}"' for c in SCHEMAS["links"])
            con.execute(f"INSERT INTO links SELECT {link_columns} FROM staged_links")
            con.execute(
                """
                DELETE FROM status_changes WHERE item_id IN (
                    SELECT item_id FROM staged_items
                    WHERE item_id NOT IN (SELECT item_id FROM history_missing))
                """
            )
            change_columns = ", ".join(f'"{c}"' for c in SCHEMAS["status_changes"])
            con.execute(
                f"INSERT INTO status_changes SELECT {change_columns} FROM staged_changes "
                "WHERE item_id NOT IN (SELECT item_id FROM history_missing)"
            )
            con.execute(
                "DELETE FROM sprints WHERE sprint_id IN (SELECT sprint_id FROM staged_sprints)"
            )
            sprint_columns = ", ".join(f'"{c}"' for c in SCHEMAS["sprints"])
            con.execute(f"INSERT INTO sprints SELECT {sprint_columns} FROM staged_sprints")
            con.execute(
                "DELETE FROM sprint_teams WHERE sprint_id IN (SELECT sprint_id FROM staged_sprints)"
            )
            con.execute(
                "INSERT INTO sprint_teams SELECT sprint_id, source, team FROM staged_sprint_teams"
            )
            problems = list(staged.problems)
            deleted = 0
            if live_ids is not None:
                deleted, refused = _reconcile(con, source, live_ids, max_delete_share)
                if refused:
                    problems.append(refused)
            _derive(con, source, cross_links)
            con.execute(
                """
                UPDATE sync_runs SET outcome = ?, finished = now(), items = ?, links = ?,
                    sprints = ?, status_changes = ?, deleted = ?, problems = ?,
                    problem_text = ?, cursor_after = ?
                WHERE run_id = ?
                """,
                [
                    "partial" if problems else "success",
                    items.height,
                    links.height,
                    sprints.height,
                    changes.height,
                    deleted,
                    len(problems),
                    _problem_text(problems),
                    cursor,
                    run_id,
                ],
            )
            if cursor is not None:
                con.execute("DELETE FROM cursors WHERE source = ?", [source])
                con.execute("INSERT INTO cursors VALUES (?, ?, ?, now())", [source, cursor, run_id])
        return CommitResult(
            run_id,
            items.height,
            links.height,
            sprints.height,
            changes.height,
            deleted,
            len(problems),
            cursor,
        )

    # ------------------------------------------------------------------ report deliveries

    @_retried
    def begin_delivery(self, report: str, target: str) -> int:
        """Record that a delivery started (committed at once). A delivery of the same report
        still ``running`` was left by a process that stopped: it is marked failed."""
        with self.transaction() as con:
            con.execute(
                "UPDATE report_deliveries SET outcome = 'failed', finished = now(), "
                "error = 'the process stopped before this delivery finished' "
                "WHERE report = ? AND outcome = 'running'",
                [report],
            )
            delivery_id = self._next_id(con, "delivery_ids")
            con.execute(
                "INSERT INTO report_deliveries (delivery_id, report, started, outcome, target) "
                "VALUES (?, ?, now(), 'running', ?)",
                [delivery_id, report, target],
            )
        return delivery_id

    @_retried
    def finish_delivery(
        self, delivery_id: int, *, error: str | None, as_of: datetime | None
    ) -> None:
        """``success`` without an error, else ``failed`` with it (one line, already redacted)."""
        with self.transaction() as con:
            con.execute(
                "UPDATE report_deliveries SET finished = now(), outcome = ?, error = ?, "
                "as_of = ? WHERE delivery_id = ?",
                ["failed" if error else "success", error, as_of, delivery_id],
            )

    def last_deliveries(self, reports: Sequence[str]) -> pl.DataFrame:
        """The last delivery of each named report (in the given order); a report never
        delivered has a row of nulls."""
        wanted = pl.DataFrame(
            {"report": list(reports), "order": list(range(len(reports)))},
            schema={"report": pl.String, "order": pl.Int64},
        )
        con = self.cursor()
        try:
            con.register("wanted_reports", wanted.to_arrow())
            return con.sql(
                """
                SELECT w.report, d.outcome, d.started, d.finished, d.target, d.error, d.as_of
                FROM wanted_reports w LEFT JOIN (
                    SELECT * FROM report_deliveries QUALIFY row_number() OVER
                        (PARTITION BY report ORDER BY delivery_id DESC) = 1
                ) d USING (report)
                ORDER BY w."order"
                """
            ).pl()
        finally:
            con.close()

    # ------------------------------------------------------------------ saved views

    @_retried
    def save_view(self, viewer: str, name: str, url: str) -> None:
        """Keep (or replace) one viewer's named bookmark."""
        with self.transaction() as con:
            con.execute("DELETE FROM saved_views WHERE viewer = ? AND name = ?", [viewer, name])
            con.execute("INSERT INTO saved_views VALUES (?, ?, ?, now())", [viewer, name, url])

    def saved_views(self, viewer: str) -> list[tuple[str, str]]:
        """(name, url) of one viewer's bookmarks, by name."""
        rows = self.query(
            "SELECT name, url FROM saved_views WHERE viewer = ? ORDER BY name", [viewer]
        )
        return list(rows.iter_rows())

    @_retried
    def delete_view(self, viewer: str, name: str) -> bool:
        with self.transaction() as con:
            found = con.execute(
                "DELETE FROM saved_views WHERE viewer = ? AND name = ? RETURNING name",
                [viewer, name],
            ).fetchall()
        return bool(found)


def _reconcile(
    con: duckdb.DuckDBPyConnection,
    source: str,
    live_ids: set[str],
    max_delete_share: float | None,
) -> tuple[int, str | None]:
    """Mark the source's items missing from the listing deleted and bring back those in it.

    Returns (items marked deleted, the refusal line when the mass-delete guard held them back).
    """
    live = pl.DataFrame({"native_id": sorted(live_ids)}, schema={"native_id": pl.String})
    con.register("live_ids", live.to_arrow())
    row = con.execute(
        "SELECT count(*) FILTER (WHERE native_id NOT IN (SELECT native_id FROM live_ids)), "
        "count(*) FROM work_items WHERE source = ? AND NOT is_deleted",
        [source],
    ).fetchone()
    gone, alive = (int(row[0]), int(row[1])) if row else (0, 0)
    refused = None
    if max_delete_share is not None and gone and gone > max_delete_share * alive:
        refused = (
            f"reconciliation would mark {gone:,} of {alive:,} live items deleted "
            f"({gone / alive:.0%}, above max_delete_share {max_delete_share:.0%}); they were "
            "kept - check the source's scope and token, or run `pmolens sync --allow-mass-delete` "
            "if they really are gone"
        )
        gone = 0
        con.execute(  # items that came back are still brought back
            "UPDATE work_items SET is_deleted = false WHERE source = ? AND is_deleted "
            "AND native_id IN (SELECT native_id FROM live_ids)",
            [source],
        )
    else:
        # only the rows whose flag flips are rewritten, not the whole source
        con.execute(
            "UPDATE work_items SET is_deleted = NOT is_deleted WHERE source = ? "
            "AND is_deleted = (native_id IN (SELECT native_id FROM live_ids))",
            [source],
        )
    return gone, refused


def _derive(
    con: duckdb.DuckDBPyConnection, source: str, patterns: Sequence[CrossLinkPattern]
) -> None:
    """Facts that follow from the loaded rows: parents by key, sprint teams, teams, link ends.

    Sprint teams: a sprint serves every team that has live items in it (besides the teams whose
    board lists it), and ``sprints.team`` of a sprint no board gave a team is the team most of
    its items belong to."""
    con.execute(
        """
        UPDATE work_items SET parent_id = p.item_id
        FROM work_items p
        WHERE work_items.source = ? AND work_items.parent_id IS NULL
          AND work_items.parent_key IS NOT NULL
          AND p.source = work_items.source AND p.key = work_items.parent_key
        """,
        [source],
    )
    con.execute(
        """
        UPDATE sprints SET team = m.team FROM (
            SELECT sprint_id, mode(team) AS team FROM work_items
            WHERE source = ? AND sprint_id IS NOT NULL AND team IS NOT NULL
            GROUP BY sprint_id) m
        WHERE sprints.sprint_id = m.sprint_id AND sprints.team IS NULL
        """,
        [source],
    )
    con.execute(
        """
        INSERT INTO sprint_teams
        SELECT DISTINCT w.sprint_id, s.source, w.team
        FROM work_items w JOIN sprints s ON s.sprint_id = w.sprint_id
        WHERE w.source = ? AND NOT w.is_deleted AND w.team IS NOT NULL
          AND NOT EXISTS (
            SELECT 1 FROM sprint_teams t WHERE t.sprint_id = w.sprint_id AND t.team = w.team)
        """,
        [source],
    )
    con.execute("DELETE FROM teams")
    con.execute(
        """
        INSERT INTO teams
        SELECT team, mode(organisation), mode(source) FROM work_items
        WHERE team IS NOT NULL AND NOT is_deleted GROUP BY team ORDER BY team
        """
    )
    _resolve_cross_links(con, patterns)


def _resolve_cross_links(
    con: duckdb.DuckDBPyConnection, patterns: Sequence[CrossLinkPattern]
) -> None:
    """Give cross-tracker links their far end: match the URL to a source's base URL and the
    item's key (Jira ``/browse/KEY``) or id (ADO ``/_workitems/edit/ID``, ``/workItems/ID``);
    text references (``cross_links`` patterns) become links too. Then mark what resolved."""
    con.execute("DELETE FROM links WHERE link_id LIKE 'text:%'")
    for index, pattern in enumerate(patterns):
        con.execute(
            """
            INSERT INTO links
            SELECT DISTINCT w.source, 'text:' || ? || ':' || w.item_id || '>' || ref,
                   NULL, w.item_id, ? || ':' || ref, 'blocks', 'text reference', NULL
            FROM (
                SELECT w.*, unnest(regexp_extract_all(
                    w.title || ' ' || array_to_string(coalesce(w.labels, []), ' '), ?, 1)) AS ref
                FROM work_items w WHERE NOT w.is_deleted
            ) w
            """,
            [str(index), pattern.source, pattern.pattern],
        )
    con.execute(
        """
        UPDATE links SET
            from_item = CASE WHEN links.from_item IS NULL THEN m.item_id ELSE links.from_item END,
            to_item = CASE WHEN links.to_item IS NULL THEN m.item_id ELSE links.to_item END
        FROM (
            SELECT l.source, l.link_id, min(w.item_id) AS item_id
            FROM links l
            JOIN sources s ON starts_with(lower(l.target_url), lower(s.base_url) || '/')
                OR starts_with(l.target_url, s.source || ':')
            JOIN work_items w ON w.source = s.source AND NOT w.is_deleted AND (
                w.key = regexp_extract(l.target_url, '/browse/([^/?#]+)', 1)
                OR w.native_id = regexp_extract(l.target_url, '/(?:_workitems/edit|workItems)/(\\d+)', 1)
                OR l.target_url = s.source || ':' || w.native_id)
            WHERE (l.from_item IS NULL OR l.to_item IS NULL) AND l.target_url IS NOT NULL
            GROUP BY l.source, l.link_id
        ) m
        WHERE links.source = m.source AND links.link_id = m.link_id
        """
    )
    # only links whose flag changes are rewritten (most keep theirs from sync to sync)
    con.execute(
        """
        UPDATE links SET resolved = r.value FROM (
            SELECT l.source, l.link_id,
                   (f.item_id IS NOT NULL AND t.item_id IS NOT NULL) AS value
            FROM links l
            LEFT JOIN work_items f ON f.item_id = l.from_item AND NOT f.is_deleted
            LEFT JOIN work_items t ON t.item_id = l.to_item AND NOT t.is_deleted
        ) r
        WHERE links.source = r.source AND links.link_id = r.link_id
          AND links.resolved IS DISTINCT FROM r.value
        """
    )


def _sprints_and_teams(staged: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Staged sprint rows (one per sprint and team it serves) -> (sprints: one row per sprint,
    the last staged one, with ``team`` = the first team listed for it; sprint_teams: sprint_id,
    source, team, once each)."""
    teamed = staged.filter(pl.col("team").is_not_null())
    first_team = teamed.unique("sprint_id", keep="first", maintain_order=True).select(
        "sprint_id", "team"
    )
    sprints = (
        staged.unique("sprint_id", keep="last", maintain_order=True)
        .drop("team")
        .join(first_team, on="sprint_id", how="left", maintain_order="left")
        .select(list(SCHEMAS["sprints"]))
    )
    sprint_teams = teamed.select("sprint_id", "source", "team").unique(
        keep="first", maintain_order=True
    )
    return sprints, sprint_teams


#: The sprints the analyses read: one row per (sprint, team it serves), the team from
#: ``sprint_teams``; a sprint that serves no known team once, with ``sprints.team`` (null).
_TEAM_SPRINTS_SQL = (
    "SELECT "
    + ", ".join(
        "coalesce(t.team, s.team) AS team" if c == "team" else f's."{c}"'
        for c in SCHEMAS["sprints"]
    )
    + " FROM sprints s LEFT JOIN (SELECT DISTINCT sprint_id, team FROM sprint_teams) t"
    " ON t.sprint_id = s.sprint_id"
)


def _problem_text(problems: Sequence[str]) -> str | None:
    if not problems:
        return None
    counted: dict[str, int] = {}
    for problem in problems:
        counted[problem] = counted.get(problem, 0) + 1
    lines = [f"{text} (x{n})" if n > 1 else text for text, n in counted.items()]
    return "\n".join(lines)[:_MAX_PROBLEM_TEXT]


def _conform(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """DuckDB hands back what it stores; make dtypes exactly the canonical ones."""
    schema = SCHEMAS.get(name)
    if schema is None:
        return df
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def _pl(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return con.sql(sql).pl()


def utcnow() -> datetime:
    return datetime.now(UTC)
