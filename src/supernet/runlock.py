"""One process per run: an advisory lock file per run id beside the store.

Two processes training one run id would both write its checkpoint and its evaluations. The lock is
``fcntl.flock`` on ``OUT_DIR/.locks/RUN_ID.lock``: the kernel drops it when the holder exits, even on
kill -9, so a run stored as ``running`` whose lock nobody holds is known to be *stale*. The file holds
the holder's pid, for the message the second process prints. POSIX only; elsewhere locking is skipped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from supernet.errors import SupernetError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected against a second process
    fcntl = None  # type: ignore[assignment]


def lock_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / ".locks" / f"{run_id}.lock"


@contextlib.contextmanager
def hold(out_dir: str | Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block, or fail at once naming the process that holds it."""
    if fcntl is None:
        yield
        return
    path = lock_path(out_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise SupernetError(f"run {run_id} is being trained by process {holder} (lock {path}); wait for it to "
                                "finish or stop it, then re-run to resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_held(out_dir: str | Path, run_id: str) -> bool:
    """Whether a live process holds the run's lock (False where locks are unavailable)."""
    path = lock_path(out_dir, run_id)
    if fcntl is None or not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def shown_status(out_dir: str | Path, run_id: str, status: str) -> str:
    """A stored status as listings show it: ``running`` with no live holder of the lock is ``stale`` (its
    process died without a word, e.g. kill -9; re-running its command resumes it)."""
    return "stale" if status == "running" and fcntl is not None and not is_held(out_dir, run_id) else status
