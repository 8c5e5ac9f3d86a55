"""Durable records of a search: the run's own SQLite store and the cross-run evaluation cache.

The run store is the source of truth for resume: an evaluation is committed (WAL,
``synchronous=FULL``) before the strategy learns its result, so a crash at any point loses at most
an evaluation that was still being measured, and a config that is already stored is answered from
the store instead of being measured again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.paths import cache_dir
from edgeprune.host.search.types import EvalResult, EvaluatorIdentity

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 30.0
RUN_DB_NAME = "evaluations.sqlite"
CACHE_DB_NAME = "eval_cache.sqlite"

_RUN_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- 'baseline' | 'candidate'
    strategy TEXT NOT NULL,
    digest TEXT NOT NULL,
    config_json TEXT NOT NULL,
    origin TEXT NOT NULL,            -- 'device' (measured now) | 'cache' (global cache) | 'run' (this run)
    counted INTEGER NOT NULL,        -- 1 when it used one unit of the device-evaluation budget
    feasible INTEGER NOT NULL,
    reason TEXT NOT NULL,
    reward REAL,
    result_json TEXT NOT NULL,
    proposal_json TEXT NOT NULL,     -- the strategy's raw action / params, for replay and plots
    started REAL NOT NULL,
    finished REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_digest ON evaluations(digest);
-- Evaluations handed to parallel workers and not yet recorded (edgeprune.host.search.parallel).
CREATE TABLE IF NOT EXISTS inflight (
    digest TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    proposal_json TEXT NOT NULL,
    started REAL NOT NULL,
    requeued INTEGER NOT NULL DEFAULT 0  -- resumes that re-queued it (at most one)
);
"""

_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    task_hash TEXT NOT NULL, digest TEXT NOT NULL, target TEXT NOT NULL, build_id TEXT NOT NULL,
    result_json TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (task_hash, digest, target, build_id)
);
"""


class StoreError(RuntimeError):
    """A store that cannot be used; the message says what happened to the file and what to do (one line).
    ``path``: the SQLite file, when known."""

    path: Path | None = None


class StoreVersionError(StoreError):
    """A run directory written by an older edgeprune whose store lacks columns this version reads."""


class StoreFullError(StoreError):
    """The disk (or the file system's quota) holding a store is full; what was committed before is intact."""


class StoreCorruptError(StoreError):
    """A store whose file is empty, is not SQLite, or is damaged inside (truncated, overwritten)."""


SQLITE_HEADER = b"SQLite format 3\x00"
# SQLite result codes (sqlite3.h) that mean the disk is full or the file is not (or no longer) a database.
_SQLITE_FULL, _SQLITE_CORRUPT, _SQLITE_NOTADB = 13, 11, 26


def store_error(exc: BaseException, path: Path, what: str = "store") -> StoreError:
    """The one-line ``StoreError`` for an SQLite (or decoding) failure on ``path`` (kept as its ``path``)."""
    err = _store_error(exc, path, what)
    err.path = Path(path)
    return err


def _store_error(exc: BaseException, path: Path, what: str = "store") -> StoreError:
    """The one-line ``StoreError`` for an SQLite (or decoding) failure on ``path``.

    :param exc: what SQLite (or ``json``) raised
    :param path: the SQLite file
    :param what: ``"store"`` (a run's) or ``"cache"`` (the global evaluation cache): decides the advice
    """
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code == _SQLITE_FULL or "database or disk is full" in text:
        return StoreFullError(f"no space left for {path} (SQLite: database or disk is full); free space on that "
                              "disk and run the command again: everything committed before is intact")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text \
            or isinstance(exc, (ValueError, KeyError, TypeError)):
        if what == "cache":
            return StoreCorruptError(f"the evaluation cache {path} is damaged ({text}); delete it (it only saves "
                                     "measuring a config twice) or run with --no-cache")
        return StoreCorruptError(f"{path} is damaged ({text}); restore it from a backup, or rescue its rows with "
                                 f"`sqlite3 {path} .recover`, or start a new run with another --out")
    if _free_bytes(path.parent) < LOW_SPACE_BYTES:
        # A full disk often reaches SQLite as a failed write of its WAL or shared-memory file (SQLITE_IOERR).
        return StoreFullError(f"no space left for {path} (SQLite: {text}; the disk has less than "
                              f"{LOW_SPACE_BYTES // 1024} KiB free); free space on that disk and run the command "
                              "again: everything committed before is intact")
    return StoreError(f"cannot use {path} ({text}); check that the disk is writable and mounted")


#: Free space below which an SQLite I/O error is reported as a full disk, bytes.
LOW_SPACE_BYTES = 1 << 20


def _free_bytes(folder: Path) -> int:
    try:
        st = os.statvfs(folder)
    except OSError:
        return LOW_SPACE_BYTES
    return st.f_bavail * st.f_frsize


def check_store_file(path: Path) -> None:
    """Refuse, before anything reads it, a store file that is empty or whose header is not SQLite's."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror or exc})") from exc
    if not head:
        raise StoreCorruptError(f"{path} is empty (0 bytes): nothing was ever stored in it; start a new run "
                                "with another --out (or delete that directory)")
    if head != SQLITE_HEADER:
        raise StoreCorruptError(f"{path} is not an SQLite store (its header is overwritten); restore it from a "
                                "backup, or start a new run with another --out")


@contextmanager
def sqlite_errors(path: Path, what: str = "store") -> Iterator[None]:
    """Turn SQLite's errors on ``path`` into a one-line ``StoreError`` (see ``store_error``)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(exc, path, what) from exc


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _check_run_columns(conn: sqlite3.Connection, run_dir: Path) -> None:
    """Refuse, in one line, a store whose evaluations table predates columns of ``_RUN_SCHEMA``."""
    have = _columns(conn, "evaluations")
    if not have:  # a new store
        return
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(_RUN_SCHEMA)
        missing = [c for c in _columns(mem, "evaluations") if c not in have]
    finally:
        mem.close()
    if missing:
        raise StoreVersionError(f"{run_dir} was written by an older edgeprune (its store has no {', '.join(missing)}); "
                                "start a new run, or resume it with the version that wrote it")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=DB_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(DB_TIMEOUT_S * 1000)}")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT refused (a full disk) leaves the transaction open: end it, keep the first error.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.debug("rollback after a failed transaction: %s", exc)
        raise


@dataclass(frozen=True)
class StoredEvaluation:
    """One row of the run store.

    Parameters
    ----------
    seq:
        Order of recording (1-based, never reused).
    kind:
        ``"baseline"`` or ``"candidate"``.
    strategy:
        Strategy that proposed it.
    origin:
        ``"device"``, ``"cache"`` or ``"run"`` (see the table comment).
    counted:
        Whether it used a unit of the device budget.
    feasible, reason:
        Constraint verdict and, when infeasible, why.
    reward:
        The reward the strategy received.
    result:
        The measured ``EvalResult``.
    proposal:
        The strategy's raw proposal (action vector, Optuna params, ...).
    started, finished:
        Unix times.
    """

    seq: int
    kind: str
    strategy: str
    origin: str
    counted: bool
    feasible: bool
    reason: str
    reward: float | None
    result: EvalResult
    proposal: dict[str, Any]
    started: float
    finished: float

    @property
    def digest(self) -> str:
        return self.result.digest


class RunStore:
    """The run directory's ``evaluations.sqlite``: every evaluation, its verdict and the run's metadata.

    Parameters
    ----------
    run_dir:
        The run directory (created if missing).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / RUN_DB_NAME
        with sqlite_errors(self.path):
            self._conn = _connect(self.path)
            try:
                _check_run_columns(self._conn, self.run_dir)
                self._conn.executescript(_RUN_SCHEMA)
            except BaseException:
                self._conn.close()
                raise

    @classmethod
    def open_existing(cls, run_dir: Path) -> RunStore:
        """Open a run directory that must already hold a sound store (for ``--resume`` and ``report``).

        Checked before anything slow happens: the file exists, is not empty, starts with SQLite's header,
        passes SQLite's ``integrity_check``, and every row and metadata value decodes. Raises a one-line
        ``StoreError`` (``StoreCorruptError`` for damage) otherwise, and ``FileNotFoundError`` for no store.
        """
        path = Path(run_dir) / RUN_DB_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} holds no {RUN_DB_NAME}; pass a directory written by `edgeprune search`")
        check_store_file(path)
        store = cls(Path(run_dir))
        try:
            store.verify()
        except BaseException:
            store.close()
            raise
        return store

    def verify(self) -> None:
        """Raise ``StoreCorruptError`` unless SQLite finds the file intact and every row decodes."""
        with sqlite_errors(self.path):
            problems = [r[0] for r in self._conn.execute("PRAGMA integrity_check(5)").fetchall()]
        if problems != ["ok"]:
            raise StoreCorruptError(f"{self.path} is damaged (SQLite: {problems[0]}); restore it from a backup, or "
                                    f"rescue its rows with `sqlite3 {self.path} .recover`, or start a new run with "
                                    "another --out")
        with sqlite_errors(self.path):
            keys = [r[0] for r in self._conn.execute("SELECT key FROM meta").fetchall()]
        for key in keys:
            self.get_meta(key)
        self.evaluations()
        self.inflight()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with sqlite_errors(self.path), _transaction(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with sqlite_errors(self.path):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else self._decode(row[0])

    def _decode(self, text: str) -> Any:
        try:
            return json.loads(text)
        except (ValueError, TypeError) as exc:
            raise store_error(exc, self.path) from exc

    # -- evaluations ------------------------------------------------------------------------------
    def record(
        self,
        *,
        kind: str,
        strategy: str,
        result: EvalResult,
        origin: str,
        counted: bool,
        feasible: bool,
        reason: str,
        reward: float | None,
        proposal: dict[str, Any],
        started: float,
        finished: float | None = None,
    ) -> int:
        """Commit one evaluation durably and return its sequence number."""
        with sqlite_errors(self.path), _transaction(self._conn) as c:
            return self._record_in(c, kind=kind, strategy=strategy, result=result, origin=origin, counted=counted,
                                   feasible=feasible, reason=reason, reward=reward, proposal=proposal,
                                   started=started, finished=finished)

    @staticmethod
    def _record_in(c: sqlite3.Connection, *, kind: str, strategy: str, result: EvalResult, origin: str,
                   counted: bool, feasible: bool, reason: str, reward: float | None, proposal: dict[str, Any],
                   started: float, finished: float | None = None) -> int:
        finished = time.time() if finished is None else finished
        cur = c.execute(
            "INSERT INTO evaluations(kind, strategy, digest, config_json, origin, counted, feasible, reason,"
            " reward, result_json, proposal_json, started, finished) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                kind,
                strategy,
                result.digest,
                result.config_json,
                origin,
                int(counted),
                int(feasible),
                reason,
                reward,
                json.dumps(result.to_dict()),
                json.dumps(proposal),
                started,
                finished,
            ),
        )
        seq = cur.lastrowid
        assert seq is not None
        return int(seq)

    def record_done(self, digest: str, **record: Any) -> int:
        """``record`` an evaluation and drop its in-flight row in one transaction (a crash keeps one or the other)."""
        with sqlite_errors(self.path), _transaction(self._conn) as c:
            seq = self._record_in(c, **record)
            c.execute("DELETE FROM inflight WHERE digest = ?", (digest,))
        return seq

    # -- in-flight evaluations (parallel engines) -------------------------------------------------
    def add_inflight(self, digest: str, config_json: str, proposal: dict[str, Any], requeued: int = 0) -> None:
        """Note that ``digest`` was handed to a worker (committed before it is)."""
        with sqlite_errors(self.path), _transaction(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO inflight(digest, config_json, proposal_json, started, requeued)"
                      " VALUES (?,?,?,?,?)", (digest, config_json, json.dumps(proposal), time.time(), int(requeued)))

    def inflight(self) -> list[tuple[str, str, dict[str, Any], int]]:
        """``(digest, config_json, proposal, requeued)`` of every evaluation handed out and not recorded."""
        with sqlite_errors(self.path):
            rows = self._conn.execute(
                "SELECT digest, config_json, proposal_json, requeued FROM inflight ORDER BY started, digest").fetchall()
        return [(r[0], r[1], self._decode(r[2]), int(r[3])) for r in rows]

    def drop_inflight(self, digest: str) -> None:
        with sqlite_errors(self.path), _transaction(self._conn) as c:
            c.execute("DELETE FROM inflight WHERE digest = ?", (digest,))

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[StoredEvaluation]:
        with sqlite_errors(self.path):
            rows = self._conn.execute(
                "SELECT seq, kind, strategy, origin, counted, feasible, reason, reward, result_json, proposal_json,"
                f" started, finished FROM evaluations {where} ORDER BY seq",
                args,
            ).fetchall()
        try:
            return self._stored(rows)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Bytes overwritten inside a row's text: SQLite's pages are intact, the JSON in them is not.
            raise store_error(exc if not isinstance(exc, AttributeError) else ValueError(str(exc)), self.path) from exc

    @staticmethod
    def _stored(rows: list[Any]) -> list[StoredEvaluation]:
        return [
            StoredEvaluation(
                seq=r[0],
                kind=r[1],
                strategy=r[2],
                origin=r[3],
                counted=bool(r[4]),
                feasible=bool(r[5]),
                reason=r[6],
                reward=r[7],
                result=EvalResult.from_dict(json.loads(r[8])),
                proposal=json.loads(r[9]),
                started=r[10],
                finished=r[11],
            )
            for r in rows
        ]

    def evaluations(self, kind: str | None = None) -> list[StoredEvaluation]:
        if kind is None:
            return self._rows()
        return self._rows("WHERE kind = ?", (kind,))

    def find(self, digest: str, accept: Callable[[StoredEvaluation], bool] | None = None) -> StoredEvaluation | None:
        """The first stored evaluation of ``digest`` in this run (that ``accept`` takes, when given), if any."""
        rows = self._rows("WHERE digest = ? ", (digest,))
        return next((r for r in rows if accept is None or accept(r)), None)

    def baseline(self) -> StoredEvaluation | None:
        rows = self._rows("WHERE kind = 'baseline'")
        return rows[0] if rows else None

    def device_evaluations(self) -> int:
        """Units of the budget used so far (measurements on the device, baseline excluded)."""
        with sqlite_errors(self.path):
            row = self._conn.execute("SELECT COUNT(*) FROM evaluations WHERE counted = 1").fetchone()
        return int(row[0])

    def count(self) -> int:
        with sqlite_errors(self.path):
            row = self._conn.execute("SELECT COUNT(*) FROM evaluations WHERE kind = 'candidate'").fetchone()
        return int(row[0])


class EvalCache:
    """Global cache of measurements, keyed by (task hash, config digest, target, firmware build id).

    Parameters
    ----------
    path:
        SQLite file; the default lives under ``edgeprune.bench.paths.cache_dir()``.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            path = cache_dir() / CACHE_DB_NAME
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite_errors(self.path, "cache"):
            self._conn = _connect(self.path)
            self._conn.executescript(_CACHE_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def get(self, ident: EvaluatorIdentity, digest: str) -> EvalResult | None:
        with sqlite_errors(self.path, "cache"):
            row = self._conn.execute(
                "SELECT result_json FROM cache WHERE task_hash=? AND digest=? AND target=? AND build_id=?",
                (ident.task_hash, digest, ident.target, ident.build_id),
            ).fetchone()
        try:
            return None if row is None else EvalResult.from_dict(json.loads(row[0]))
        except (ValueError, KeyError, TypeError) as exc:
            raise store_error(exc, self.path, "cache") from exc

    def put(self, ident: EvaluatorIdentity, result: EvalResult) -> None:
        # Failed candidates are not cached: the failure may be transient (a hung emulator).
        if result.error is not None and not result.error.startswith("ExportError"):
            return
        with sqlite_errors(self.path, "cache"), _transaction(self._conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO cache(task_hash, digest, target, build_id, result_json, created)"
                " VALUES (?,?,?,?,?,?)",
                (ident.task_hash, result.digest, ident.target, ident.build_id, json.dumps(result.to_dict()), time.time()),
            )
