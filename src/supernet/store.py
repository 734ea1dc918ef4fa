"""SQLite results store: runs, per-epoch statistics, per-architecture accuracies, metrics.

Everything a report shows can be recomputed from these rows (each evaluated architecture keeps its
super-net accuracy, ground truth, rank and parameter count), so a metric definition can change
without retraining. One writer per database (the CLI process, or the Ray driver).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from supernet.errors import SupernetError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, space TEXT, seed INTEGER, config TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT, run_dir TEXT NOT NULL,
    epochs_done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL, lr REAL, train_loss REAL,
    train_acc REAL, valid_loss REAL, valid_acc REAL, seconds REAL, images_per_s REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS pool (
    run_id TEXT NOT NULL REFERENCES runs(id), position INTEGER NOT NULL, arch TEXT NOT NULL,
    grp TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL, bn TEXT NOT NULL, split TEXT NOT NULL, n_images INTEGER NOT NULL,
    batch_size INTEGER NOT NULL, settings TEXT NOT NULL, seconds REAL, created REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'train'
);
CREATE TABLE IF NOT EXISTS arch_results (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE, arch TEXT NOT NULL,
    accuracy REAL NOT NULL, ground_truth REAL NOT NULL, gt_rank INTEGER NOT NULL, params INTEGER NOT NULL,
    PRIMARY KEY (evaluation_id, arch)
);
CREATE TABLE IF NOT EXISTS arch_scores (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE, arch TEXT NOT NULL,
    scorer TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (evaluation_id, scorer, arch)
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL, position INTEGER NOT NULL, factor TEXT NOT NULL, level TEXT NOT NULL,
    seed INTEGER NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (sweep, position)
);
CREATE TABLE IF NOT EXISTS partial_scores (
    run_id TEXT NOT NULL, label TEXT NOT NULL, position INTEGER NOT NULL, accuracy REAL NOT NULL,
    loss REAL NOT NULL, seconds REAL NOT NULL, PRIMARY KEY (run_id, label, position)
);
CREATE TABLE IF NOT EXISTS reference_runs (
    space TEXT NOT NULL, role TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (space, role, run_id)
);
CREATE TABLE IF NOT EXISTS final_runs (
    id TEXT PRIMARY KEY, source_run TEXT, space TEXT NOT NULL, arch TEXT NOT NULL, seed INTEGER NOT NULL,
    config TEXT NOT NULL, status TEXT NOT NULL, message TEXT, run_dir TEXT NOT NULL,
    epochs_done INTEGER NOT NULL DEFAULT 0, params INTEGER, ground_truth REAL, test_acc REAL,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS final_epochs (
    final_id TEXT NOT NULL REFERENCES final_runs(id), epoch INTEGER NOT NULL, lr REAL, train_loss REAL,
    train_acc REAL, valid_acc REAL, test_loss REAL, test_acc REAL, seconds REAL, PRIMARY KEY (final_id, epoch)
);
CREATE TABLE IF NOT EXISTS metrics (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (evaluation_id, name)
);
"""

RUN_STATES = ("running", "completed", "failed", "interrupted")
EXPORTED = ("runs", "epochs", "pool", "evaluations", "arch_results", "metrics", "arch_scores")  # one run's rows
# Columns added after the first schema: (table, column, definition), added to older stores on open.
ADDED_COLUMNS = (("pool", "grp", "TEXT NOT NULL DEFAULT ''"), ("evaluations", "kind", "TEXT NOT NULL DEFAULT 'train'"),
                 ("sweep_runs", "baseline", "INTEGER NOT NULL DEFAULT 0"), ("epochs", "rank_loss", "REAL"))


@contextmanager
def outcome_recorded(set_status: Callable[[str, str | None], None]) -> Iterator[None]:
    """Whatever ends the block is stored: a Ctrl-C as ``interrupted`` (with how to resume), any error as ``failed``
    with its message; the exception goes on. So no run is ever left marked ``running`` by its own process."""
    try:
        yield
    except KeyboardInterrupt:
        set_status("interrupted", "interrupted; re-run the same command to resume")
        raise
    except BaseException as exc:
        set_status("failed", str(exc) or type(exc).__name__)
        raise


@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    space: str
    seed: int
    config: dict[str, Any]
    status: str
    message: str | None
    run_dir: str
    epochs_done: int
    created: float
    updated: float


@dataclass(frozen=True)
class PoolScores:
    """One stored evaluation's pool with every per-architecture value in pool order: what re-ranking a finished
    evaluation needs (another ``evaluation.score``, another baseline, a plot) without its forward passes."""

    keys: list[str]
    accuracy: NDArray[np.float64]  # the super-net's, percent
    ground_truth: NDArray[np.float64]
    params: NDArray[np.float64]
    scores: Mapping[str, NDArray[np.float64]]  # each stored scorer covering the whole pool: proxies, super-net loss


class ResultStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file() and self.path.stat().st_size == 0:  # SQLite would take it for a new, empty store
            raise SupernetError(f"results store {self.path} is empty (0 bytes): it was truncated or never written; "
                                "restore it from a backup, or move it aside to start a new store")
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(SCHEMA)
            for table, column, definition in ADDED_COLUMNS:
                if column not in {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        except sqlite3.DatabaseError as exc:
            raise SupernetError(f"results store {self.path} is damaged ({exc}): restore it from a backup, or move it "
                                "aside to start a new one (`sqlite3 FILE .recover` may salvage its rows)") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db:  # commits, or rolls back on error: a failed write leaves nothing half-stored
            yield self._db

    # runs -------------------------------------------------------------------------------------
    def upsert_run(self, run_id: str, *, name: str, space: str, seed: int, config: dict, run_dir: str) -> None:
        """``run_dir`` is stored relative to the store's directory when it lies inside it, so a store moved
        together with its run directories keeps finding them."""
        now = time.time()
        run_dir = self._relative(run_dir)
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, name, space, seed, config, status, run_dir, created, updated) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "status='running', message=NULL, config=excluded.config, run_dir=excluded.run_dir, "
                "updated=excluded.updated",
                (run_id, name, space, seed, json.dumps(config, sort_keys=True), run_dir, now, now),
            )

    def _relative(self, run_dir: str) -> str:
        """Relative to the store's directory when inside it: a store moved with its run directories finds them."""
        with contextlib.suppress(ValueError):
            return Path(run_dir).resolve().relative_to(self.path.parent.resolve()).as_posix()
        return run_dir

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        assert status in RUN_STATES, status
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, message=?, updated=? WHERE id=?", (status, message, time.time(), run_id)
            )

    def rewind(self, run_id: str, epochs_done: int) -> None:
        """Forget what lies beyond the checkpoint a run resumes from (everything, for epochs_done=0).

        Evaluation labels count completed epochs, epoch rows are 0-based: a resume from epoch E keeps
        evaluations up to label E and epoch rows below E, so nothing is ever stored twice.
        """
        with self._tx() as db:
            db.execute("DELETE FROM partial_scores WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM evaluations WHERE run_id=? AND epoch>?", (run_id, epochs_done))
            db.execute("DELETE FROM epochs WHERE run_id=? AND epoch>=?", (run_id, epochs_done))
            db.execute("UPDATE runs SET epochs_done=? WHERE id=?", (epochs_done, run_id))

    def get_run(self, run_id: str) -> RunRow:
        rows = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchall()
        if not rows:
            matches = self._db.execute("SELECT * FROM runs WHERE substr(id, 1, ?) = ?", (len(run_id), run_id)).fetchall()
            if len(matches) != 1:
                hint = "ambiguous prefix" if matches else "no such run"
                raise SupernetError(f"run '{run_id}': {hint} in {self.path} (see `supernet runs`)")
            rows = matches
        return self._row(rows[0])

    def runs(self) -> list[RunRow]:
        return [self._row(r) for r in self._db.execute("SELECT * FROM runs ORDER BY created").fetchall()]

    def _row(self, r: Sequence[Any]) -> RunRow:
        return RunRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], self._run_dir(r[0], r[7]), r[8], r[9],
                      r[10])

    def _run_dir(self, run_id: str, stored: str) -> str:
        """Relative run directories live beside the store; an absolute one (stores written before relative
        paths) that no longer exists is looked for beside the store too, where a moved store has it."""
        path = Path(stored)
        if not path.is_absolute():
            return str(self.path.parent / path)
        beside = self.path.parent / run_id
        return str(beside) if not path.exists() and beside.exists() else stored

    # training ---------------------------------------------------------------------------------
    def set_pool(self, run_id: str, groups: Sequence[tuple[str, Sequence[str]]]) -> None:
        """The pool as (group, archs) pairs; one unnamed group unless pools are drawn per sub-space."""
        rows = [(g, a) for g, archs in groups for a in archs]
        with self._tx() as db:
            db.execute("DELETE FROM pool WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO pool VALUES (?, ?, ?, ?)", [(run_id, i, a, g) for i, (g, a) in enumerate(rows)])

    def pool(self, run_id: str) -> list[tuple[str, list[str]]]:
        groups: dict[str, list[str]] = {}
        for arch, grp in self._db.execute("SELECT arch, grp FROM pool WHERE run_id=? ORDER BY position", (run_id,)):
            groups.setdefault(grp, []).append(arch)
        return list(groups.items())

    def add_epoch(self, run_id: str, epoch: int, stats: dict[str, float | None]) -> None:
        cols = ("lr", "train_loss", "train_acc", "valid_loss", "valid_acc", "seconds", "images_per_s", "rank_loss")
        with self._tx() as db:
            db.execute(
                f"INSERT OR REPLACE INTO epochs (run_id, epoch, {', '.join(cols)}) VALUES (?, ?, {', '.join('?' * len(cols))})",
                (run_id, epoch, *(stats.get(c) for c in cols)),
            )
            db.execute("UPDATE runs SET epochs_done=?, updated=? WHERE id=?", (epoch + 1, time.time(), run_id))

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # evaluation -------------------------------------------------------------------------------
    def add_evaluation(
        self,
        run_id: str,
        *,
        epoch: int,
        bn: str,
        split: str,
        n_images: int,
        batch_size: int,
        settings: dict[str, Any],
        seconds: float,
        archs: Sequence[tuple[str, float, float, int, int]],
        metrics: dict[str, float],
        kind: str = "train",
        scores: Mapping[str, Sequence[float]] | None = None,
        partial: str | None = None,
    ) -> int:
        """Store one pool evaluation atomically: (arch, accuracy, ground truth, rank, params) rows.

        ``scores``: per-architecture scores of other scorers (the training-free proxies), in ``archs`` order.

        ``kind`` is ``train`` for the evaluations of the training protocol (the run's headline) and
        ``manual`` for ``supernet evaluate``; a manual evaluation replaces an identical earlier one.
        ``partial``: the label of the partial scores this evaluation completes (deleted in the same transaction).
        """
        settings_json = json.dumps(settings, sort_keys=True)
        with self._tx() as db:
            if partial is not None:
                db.execute("DELETE FROM partial_scores WHERE run_id=? AND label=?", (run_id, partial))
            if kind == "manual":
                db.execute(
                    "DELETE FROM evaluations WHERE run_id=? AND epoch=? AND bn=? AND settings=? AND kind='manual'",
                    (run_id, epoch, bn, settings_json),
                )
            cur = db.execute(
                "INSERT INTO evaluations (run_id, epoch, bn, split, n_images, batch_size, settings, seconds, created, "
                "kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, epoch, bn, split, n_images, batch_size, settings_json, seconds, time.time(), kind),
            )
            eid = int(cur.lastrowid or 0)
            db.executemany("INSERT INTO arch_results VALUES (?, ?, ?, ?, ?, ?)", [(eid, *a) for a in archs])
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?)", [(eid, k, v) for k, v in metrics.items()])
            db.executemany("INSERT INTO arch_scores VALUES (?, ?, ?, ?)",
                           [(eid, a[0], name, float(v)) for name, vs in (scores or {}).items()
                            for a, v in zip(archs, vs, strict=True)])
        return eid

    def add_partial(self, run_id: str, label: str, positions: Sequence[int], accuracy: Sequence[float],
                    loss: Sequence[float], seconds: float) -> None:
        """Scores of a chunk of an evaluation in progress (``label`` names the evaluation): a stopped evaluation
        of a large pool resumes after its last stored chunk. The chunk's seconds are split over its rows."""
        each = seconds / max(len(positions), 1)
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO partial_scores VALUES (?, ?, ?, ?, ?, ?)",
                           [(run_id, label, int(i), float(a), float(lo), each)
                            for i, a, lo in zip(positions, accuracy, loss, strict=True)])

    def partial_labels(self, run_id: str) -> list[str]:
        """The labels (JSON: epoch, kind, settings, n_images, pool digest) of a run's unfinished evaluations."""
        return [r[0] for r in self._db.execute(
            "SELECT DISTINCT label FROM partial_scores WHERE run_id=? ORDER BY label", (run_id,))]

    def partial(self, run_id: str, label: str) -> dict[int, tuple[float, float, float]]:
        """position -> (accuracy, loss, seconds) of an evaluation in progress."""
        return {int(i): (a, lo, sec) for i, a, lo, sec in self._db.execute(
            "SELECT position, accuracy, loss, seconds FROM partial_scores WHERE run_id=? AND label=?", (run_id, label))}

    def evaluations(self, run_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM evaluations WHERE run_id=? ORDER BY id", (run_id,))
        names = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            row = dict(zip(names, r, strict=True))
            row["settings"] = json.loads(row["settings"])
            row["metrics"] = self.metrics(row["id"])
            out.append(row)
        return out

    def metrics(self, evaluation_id: int) -> dict[str, float]:
        return dict(self._db.execute("SELECT name, value FROM metrics WHERE evaluation_id=?", (evaluation_id,)))

    def arch_results(self, evaluation_id: int) -> list[tuple[str, float, float, int, int]]:
        return self._db.execute(
            "SELECT arch, accuracy, ground_truth, gt_rank, params FROM arch_results WHERE evaluation_id=? ORDER BY rowid",
            (evaluation_id,),
        ).fetchall()

    def arch_scores(self, evaluation_id: int) -> dict[str, dict[str, float]]:
        """scorer -> {arch: score} of one evaluation (empty for evaluations stored without proxies)."""
        out: dict[str, dict[str, float]] = {}
        for arch, scorer, score in self._db.execute(
                "SELECT arch, scorer, score FROM arch_scores WHERE evaluation_id=? ORDER BY rowid", (evaluation_id,)):
            out.setdefault(scorer, {})[arch] = score
        return out

    def pool_scores(self, evaluation_id: int) -> PoolScores:
        """In the order the evaluation stored its architectures; a scorer stored for only part of the pool is left
        out, since it cannot rank the pool."""
        rows = self.arch_results(evaluation_id)
        keys = [r[0] for r in rows]
        scores = {name: np.array([by_arch[k] for k in keys], dtype=np.float64)
                  for name, by_arch in self.arch_scores(evaluation_id).items() if set(keys) <= set(by_arch)}
        return PoolScores(keys, np.array([r[1] for r in rows], dtype=np.float64),
                          np.array([r[2] for r in rows], dtype=np.float64),
                          np.array([r[4] for r in rows], dtype=np.float64), scores)

    # moving a run between stores (a Ray worker trains into its own store; the driver imports) -----
    def export_run(self, run_id: str) -> dict[str, tuple[list[str], list[list[Any]]]]:
        """Every row of one run as (column names, rows) per table: picklable, for :meth:`import_run`."""
        of_run = "evaluation_id IN (SELECT id FROM evaluations WHERE run_id=?)"
        queries = {
            "runs": ("SELECT * FROM runs WHERE id=?", (run_id,)),
            "epochs": ("SELECT * FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,)),
            "pool": ("SELECT * FROM pool WHERE run_id=? ORDER BY position", (run_id,)),
            "evaluations": ("SELECT * FROM evaluations WHERE run_id=? ORDER BY id", (run_id,)),
            "arch_results": (f"SELECT * FROM arch_results WHERE {of_run} ORDER BY rowid", (run_id,)),
            "metrics": (f"SELECT * FROM metrics WHERE {of_run}", (run_id,)),
            "arch_scores": (f"SELECT * FROM arch_scores WHERE {of_run} ORDER BY rowid", (run_id,)),
        }
        out = {}
        for table, (sql, args) in queries.items():
            cur = self._db.execute(sql, args)
            out[table] = ([d[0] for d in cur.description], [list(r) for r in cur.fetchall()])
        cols, rows = out["runs"]
        at = cols.index("run_dir")
        for r in rows:  # absolute: the importing store may live elsewhere
            r[at] = str(Path(self._run_dir(r[cols.index("id")], r[at])).resolve())
        return out

    def import_run(self, export: dict[str, tuple[list[str], list[list[Any]]]]) -> str:
        """Replace one run's rows with exported ones, atomically; evaluation ids are renumbered here."""
        cols, runs = export["runs"]
        if len(runs) != 1:
            raise SupernetError("an exported run must hold exactly one runs row")
        for table, (columns, _) in export.items():
            known = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")} if table in EXPORTED else set()
            if not known or not set(columns) <= known:
                raise SupernetError(f"exported rows do not fit this store: table {table!r}, columns {columns}")
        run_id = runs[0][cols.index("id")]
        at = cols.index("run_dir")
        with contextlib.suppress(ValueError):
            runs[0][at] = Path(runs[0][at]).resolve().relative_to(self.path.parent.resolve()).as_posix()

        def insert(db: sqlite3.Connection, table: str, columns: list[str], rows: list[list[Any]]) -> None:
            if rows:
                db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                               rows)

        with self._tx() as db:
            db.execute("DELETE FROM evaluations WHERE run_id=?", (run_id,))  # cascades to results and metrics
            db.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM pool WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))
            for table in ("runs", "epochs", "pool"):
                insert(db, table, *export[table])
            ev_cols, evs = export["evaluations"]
            at = ev_cols.index("id")
            new_id = {}
            for ev in evs:
                names = [c for i, c in enumerate(ev_cols) if i != at]
                values = [v for i, v in enumerate(ev) if i != at]
                cur = db.execute(f"INSERT INTO evaluations ({','.join(names)}) VALUES ({','.join('?' * len(names))})",
                                 values)
                new_id[ev[at]] = cur.lastrowid
            for table in ("arch_results", "metrics", "arch_scores"):
                if table not in export:  # exported by an older version
                    continue
                columns, rows = export[table]
                k = columns.index("evaluation_id")
                insert(db, table, columns, [[new_id[v] if i == k else v for i, v in enumerate(r)] for r in rows])
        return run_id

    # sweeps -----------------------------------------------------------------------------------
    def set_sweep(self, sweep: str, rows: Sequence[tuple[str, str, int, str]], baseline: str | None = None) -> None:
        """A sweep's plan, (factor, level, seed, run id) in order; re-planning the same name replaces it.

        ``baseline``: the level whose runs are the recipe itself (the "without" of a factor's effect).
        """
        with self._tx() as db:
            db.execute("DELETE FROM sweep_runs WHERE sweep=?", (sweep,))
            db.executemany(
                "INSERT INTO sweep_runs (sweep, position, factor, level, seed, run_id, baseline) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(sweep, i, *row, int(row[1] == baseline)) for i, row in enumerate(rows)],
            )

    def sweep(self, sweep: str) -> list[tuple[str, str, int, str]]:
        rows = self._db.execute(
            "SELECT factor, level, seed, run_id FROM sweep_runs WHERE sweep=? ORDER BY position", (sweep,)
        ).fetchall()
        if not rows:
            known = [r[0] for r in self._db.execute("SELECT DISTINCT sweep FROM sweep_runs ORDER BY sweep")]
            raise SupernetError(f"no sweep '{sweep}' in {self.path}; known: {', '.join(known) or 'none'}")
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def sweep_baseline(self, sweep: str) -> str | None:
        """The level planned as the recipe itself; None when no level is (or for plans stored before)."""
        row = self._db.execute("SELECT level FROM sweep_runs WHERE sweep=? AND baseline=1 LIMIT 1", (sweep,)).fetchone()
        return row[0] if row else None

    def set_references(self, space: str, role: str, run_ids: Sequence[str]) -> None:
        """Name the runs that stand for ``role`` in ``space`` (the Random-NAS baseline, the tuned recipe),
        replacing earlier ones: reports compare factors and tables against them."""
        with self._tx() as db:
            db.execute("DELETE FROM reference_runs WHERE space=? AND role=?", (space, role))
            db.executemany("INSERT INTO reference_runs VALUES (?, ?, ?)", [(space, role, r) for r in run_ids])

    def references(self, space: str, role: str) -> list[str]:
        return [r for (r,) in self._db.execute(
            "SELECT run_id FROM reference_runs WHERE space=? AND role=? ORDER BY run_id", (space, role))]

    def sweeps(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT sweep FROM sweep_runs ORDER BY sweep")]

    # final training (`supernet retrain`) -----------------------------------------------------
    def upsert_final(self, final_id: str, *, source_run: str | None, space: str, arch: str, seed: int, config: dict,
                     run_dir: str, params: int, ground_truth: float | None) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO final_runs (id, source_run, space, arch, seed, config, status, run_dir, params, "
                "ground_truth, created, updated) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status='running', message=NULL, run_dir=excluded.run_dir, "
                "config=excluded.config, params=excluded.params, ground_truth=excluded.ground_truth, "
                "updated=excluded.updated",
                (final_id, source_run, space, arch, seed, json.dumps(config, sort_keys=True), self._relative(run_dir),
                 params, ground_truth, now, now),
            )

    def set_final_status(self, final_id: str, status: str, message: str | None = None) -> None:
        assert status in RUN_STATES, status
        with self._tx() as db:
            db.execute("UPDATE final_runs SET status=?, message=?, updated=? WHERE id=?",
                       (status, message, time.time(), final_id))

    def rewind_final(self, final_id: str, epochs_done: int) -> None:
        """Forget epochs beyond the checkpoint a final training resumes from."""
        with self._tx() as db:
            db.execute("DELETE FROM final_epochs WHERE final_id=? AND epoch>=?", (final_id, epochs_done))
            db.execute("UPDATE final_runs SET epochs_done=?, test_acc=NULL WHERE id=?", (epochs_done, final_id))

    def add_final_epoch(self, final_id: str, epoch: int, stats: Mapping[str, float | None]) -> None:
        cols = ("lr", "train_loss", "train_acc", "valid_acc", "test_loss", "test_acc", "seconds")
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO final_epochs (final_id, epoch, {', '.join(cols)}) VALUES "
                       f"(?, ?, {', '.join('?' * len(cols))})", (final_id, epoch, *(stats.get(c) for c in cols)))
            db.execute("UPDATE final_runs SET epochs_done=?, updated=? WHERE id=?", (epoch + 1, time.time(), final_id))

    def finish_final(self, final_id: str, test_acc: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE final_runs SET status='completed', message=NULL, test_acc=?, updated=? WHERE id=?",
                       (test_acc, time.time(), final_id))

    def finals(self, source_run: str | None = None) -> list[dict[str, Any]]:
        """Final trainings, oldest first; only those of one search run when ``source_run`` is given."""
        where, args = ("WHERE source_run=?", (source_run,)) if source_run else ("", ())
        cur = self._db.execute(f"SELECT * FROM final_runs {where} ORDER BY created", args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for row in rows:
            row["config"] = json.loads(row["config"])
            row["run_dir"] = self._run_dir(row["id"], row["run_dir"])
        return rows

    def final_epochs(self, final_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM final_epochs WHERE final_id=? ORDER BY epoch", (final_id,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The newest evaluation of the training protocol: re-evaluations never replace the headline."""
        row = self._db.execute(
            "SELECT id FROM evaluations WHERE run_id=? AND kind='train' ORDER BY id DESC LIMIT 1", (run_id,)
        ).fetchone()
        return self.metrics(row[0]) if row else {}
