"""Proxy scores cached on disk, so sweeps and re-evaluations pay for an architecture once.

A score is identified by everything it depends on: the space, the architecture key, the proxy, the
batch it was computed on (a digest of its images and labels, which covers the dataset, the proxy seed's
draw and the batch size), the initialisation seed and the batch size. One SQLite file under the cache
directory holds them; concurrent writers (Ray workers) are serialised by SQLite itself.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

SCHEMA = """CREATE TABLE IF NOT EXISTS scores (
    space TEXT NOT NULL, key TEXT NOT NULL, proxy TEXT NOT NULL, data TEXT NOT NULL, seed INTEGER NOT NULL,
    batch INTEGER NOT NULL, score REAL NOT NULL, PRIMARY KEY (space, key, proxy, data, seed, batch))"""


def batch_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """Identifies a proxy batch by content, so another dataset or draw never reads these scores."""
    h = hashlib.sha1()
    for t in (x, y):
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ProxyCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute(SCHEMA)
        self._db.commit()

    def get(self, space: str, data: str, seed: int, batch: int, keys: Iterable[str], proxies: Iterable[str]
            ) -> dict[tuple[str, str], float]:
        """Stored scores as {(key, proxy): score}; missing pairs are absent."""
        keys, proxies = list(keys), set(proxies)
        out: dict[tuple[str, str], float] = {}
        for start in range(0, len(keys), 500):  # SQLite limits the number of bound parameters
            chunk = keys[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, proxy, score FROM scores WHERE space=? AND data=? AND seed=? AND batch=? "
                f"AND key IN ({','.join('?' * len(chunk))})", (space, data, seed, batch, *chunk))
            out.update(((k, p), s) for k, p, s in rows if p in proxies)
        return out

    def put(self, space: str, data: str, seed: int, batch: int, scores: Mapping[str, Mapping[str, float]]) -> None:
        """``scores``: key -> {proxy: score}; one transaction, so an interrupted write leaves no half row."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(space, k, p, data, seed, batch, float(s)) for k, ps in scores.items() for p, s in ps.items()])

    def close(self) -> None:
        self._db.close()
