"""Growable column tables and append-only adjacency lists (NumPy, no TensorFlow).

Small helpers for the learner's in-memory state: capacity doubles on growth so
appends are amortised O(1), and adjacency lists are a CSR block (built in bulk
at load time) plus per-key Python lists for what was appended since.
"""

from __future__ import annotations

import numpy as np


class Table:
    """Columns of equal length ``n`` stored in arrays of capacity ``cap``."""

    def __init__(self, **dtypes):
        self._dtypes = dtypes
        self.n = 0
        self.cap = 0
        for k, dt in dtypes.items():
            setattr(self, k, np.zeros(0, dt))

    def reserve(self, n: int) -> None:
        if n <= self.cap:
            return
        # A quarter more than asked: a table loaded in bulk (a restore, a full load)
        # has room for its first appends. Without it the first comparison after a
        # restart at 1M rows copied every column of every table (~0.2 s, ×4 the
        # hundredth comparison's time).
        cap = max(n + n // 4, 2 * self.cap, 16)
        for k, dt in self._dtypes.items():
            new = np.zeros(cap, dt)
            new[: self.n] = getattr(self, k)[: self.n]
            setattr(self, k, new)
        self.cap = cap

    def extend(self, count: int, **cols) -> int:
        """Append ``count`` rows (missing columns are zero); returns the first index."""
        start = self.n
        self.reserve(start + count)
        for k, v in cols.items():
            getattr(self, k)[start : start + count] = v
        self.n = start + count
        return start

    def append(self, **cols) -> int:
        return self.extend(1, **cols)

    def view(self, k: str) -> np.ndarray:
        return getattr(self, k)[: self.n]


class Adjacency:
    """key → list of ints; append-only (callers filter dead entries)."""

    def __init__(self, keys=None, values=None, n_keys: int = 0):
        self.extra: dict[int, list[int]] = {}
        if keys is None or len(keys) == 0:
            self.indptr = np.zeros(1, np.int64)
            self.indices = np.zeros(0, np.int64)
            return
        keys = np.asarray(keys, np.int64)
        order = np.argsort(keys, kind="stable")
        self.indices = np.asarray(values, np.int64)[order]
        counts = np.bincount(keys, minlength=n_keys)
        self.indptr = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=self.indptr[1:])

    def get(self, k: int) -> np.ndarray:
        if k + 1 < len(self.indptr):
            base = self.indices[self.indptr[k] : self.indptr[k + 1]]
        else:
            base = self.indices[:0]
        ext = self.extra.get(k)
        if ext:
            return np.concatenate([base, np.asarray(ext, np.int64)])
        return base

    def get_many(self, ks) -> np.ndarray:
        parts = [self.get(int(k)) for k in ks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def add(self, k: int, v: int) -> None:
        self.extra.setdefault(k, []).append(v)
