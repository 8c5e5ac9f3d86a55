"""Durable records of a search: the run's own SQLite store and the cross-run evaluation cache.

The run store is the source of truth for resume: an evaluation is committed (WAL,
``synchronous=FULL``) before the strategy learns its result, so a crash at any point loses at most
an evaluation that was still being measured, and a config that is already stored is answered from
the store instead of being measured again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class StoreVersionError(RuntimeError):
    """A run directory written by an older edgeprune whose store lacks columns this version reads."""


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
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
        self._conn = _connect(self.path)
        try:
            _check_run_columns(self._conn, self.run_dir)
        except StoreVersionError:
            self._conn.close()
            raise
        self._conn.executescript(_RUN_SCHEMA)

    @classmethod
    def open_existing(cls, run_dir: Path) -> RunStore:
        """Open a run directory that must already hold a store (for ``--resume`` and ``report``)."""
        if not (Path(run_dir) / RUN_DB_NAME).is_file():
            raise FileNotFoundError(f"{run_dir} holds no {RUN_DB_NAME}; pass a directory written by `edgeprune search`")
        return cls(Path(run_dir))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with _transaction(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

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
        with _transaction(self._conn) as c:
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
        with _transaction(self._conn) as c:
            seq = self._record_in(c, **record)
            c.execute("DELETE FROM inflight WHERE digest = ?", (digest,))
        return seq

    # -- in-flight evaluations (parallel engines) -------------------------------------------------
    def add_inflight(self, digest: str, config_json: str, proposal: dict[str, Any], requeued: int = 0) -> None:
        """Note that ``digest`` was handed to a worker (committed before it is)."""
        with _transaction(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO inflight(digest, config_json, proposal_json, started, requeued)"
                      " VALUES (?,?,?,?,?)", (digest, config_json, json.dumps(proposal), time.time(), int(requeued)))

    def inflight(self) -> list[tuple[str, str, dict[str, Any], int]]:
        """``(digest, config_json, proposal, requeued)`` of every evaluation handed out and not recorded."""
        rows = self._conn.execute(
            "SELECT digest, config_json, proposal_json, requeued FROM inflight ORDER BY started, digest").fetchall()
        return [(r[0], r[1], json.loads(r[2]), int(r[3])) for r in rows]

    def drop_inflight(self, digest: str) -> None:
        with _transaction(self._conn) as c:
            c.execute("DELETE FROM inflight WHERE digest = ?", (digest,))

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[StoredEvaluation]:
        rows = self._conn.execute(
            "SELECT seq, kind, strategy, origin, counted, feasible, reason, reward, result_json, proposal_json,"
            f" started, finished FROM evaluations {where} ORDER BY seq",
            args,
        ).fetchall()
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
        row = self._conn.execute("SELECT COUNT(*) FROM evaluations WHERE counted = 1").fetchone()
        return int(row[0])

    def count(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM evaluations WHERE kind = 'candidate'").fetchone()
        return int(row[0])


class EvalCache:
    """Global cache of measurements, keyed by (task hash, config digest, target, firmware build id).

    Parameters
    ----------
    path:
        SQLite file; the default lives under ``edgeprune.host.paths.cache_dir()``.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from edgeprune.host.paths import cache_dir

            path = cache_dir() / CACHE_DB_NAME
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(self.path)
        self._conn.executescript(_CACHE_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def get(self, ident: EvaluatorIdentity, digest: str) -> EvalResult | None:
        row = self._conn.execute(
            "SELECT result_json FROM cache WHERE task_hash=? AND digest=? AND target=? AND build_id=?",
            (ident.task_hash, digest, ident.target, ident.build_id),
        ).fetchone()
        return None if row is None else EvalResult.from_dict(json.loads(row[0]))

    def put(self, ident: EvaluatorIdentity, result: EvalResult) -> None:
        # Failed candidates are not cached: the failure may be transient (a hung emulator).
        if result.error is not None and not result.error.startswith("ExportError"):
            return
        with _transaction(self._conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO cache(task_hash, digest, target, build_id, result_json, created)"
                " VALUES (?,?,?,?,?,?)",
                (ident.task_hash, result.digest, ident.target, ident.build_id, json.dumps(result.to_dict()), time.time()),
            )
