"""What rankings read of the video table, kept briefly in this process's memory.

A ranking page shows 1-100 videos' display fields, and the default ranking leaves
out the videos YouTube reports deleted or private and those an admin moderated
(which ``safe`` and ``unsafeReasons`` also read).
Read from the database on every request, those reads were most of what a ranking
costs once its scores are sorted: each query is a round trip through aiosqlite's
thread (or asyncpg), ~470 of ~1,240 µs of CPU per cold ``rankings(first: 20)`` in
process, and two more queries for the default ranking's hidden videos. None of it
changes when comparisons land, which is when rankings are recomputed.

Freshness, the contract:

- this process's own writes (the metadata worker, an admin's metadata edit or
  moderation) call :meth:`VideoCatalog.forget` once committed, and the next read
  sees them: a read that was under way across a ``forget`` is served but not kept;
- writes made elsewhere (another server process, ``sunrank refresh-metadata``
  beside a server) are seen within ``max_age`` seconds
  (``SUNRANK_VIDEO_CATALOG_MAX_AGE_SECONDS``, default 2; 0 reads every time).

Rows are the shaped dicts of :func:`app.resolvers.videos.dicts_by_ids`, shared
between requests: read them, never change them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, cast

import numpy as np

from app.db.models import Video, VideoModeration
from app.resolvers import videos
from app.sources.queue import HIDDEN

MAX_ROWS = 10_000  # rows kept (least recently used dropped): 100 pages of 100


class VideoCatalog:
    def __init__(self, max_age: float, max_rows: int = MAX_ROWS):
        self.max_age, self.max_rows = max_age, max_rows
        self._rows: OrderedDict[int, tuple[float, dict[str, Any]]] = OrderedDict()
        self._hidden: tuple[float, tuple[np.ndarray, frozenset[int]]] | None = None
        self._generation = 0  # moved by forget(): reads begun before it are not kept

    def forget(self) -> None:
        """Video rows or moderation changed (committed): read everything again."""
        self._rows.clear()
        self._hidden = None
        self._generation += 1

    async def rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The rows of these videos (absent: no such video), as ``dicts_by_ids``."""
        now = time.monotonic()
        out: dict[int, dict[str, Any]] = {}
        missing = []
        for vid in ids:
            found = self._rows.get(vid)
            if found is not None and now - found[0] < self.max_age:
                out[vid] = found[1]
            else:
                missing.append(vid)
        if not missing:
            return out
        generation = self._generation
        read = await videos.dicts_by_ids(missing)
        out.update(read)
        if generation == self._generation and self.max_age > 0:
            for vid, row in read.items():
                self._rows[vid] = (now, row)
                self._rows.move_to_end(vid)
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)
        return out

    async def hidden_ids(self) -> np.ndarray:
        """Sorted ids of the videos no default ranking shows whatever their scores:
        unavailable at YouTube (deleted, private) or moderated by an admin."""
        return (await self._hidden_sets())[0]

    async def moderated_ids(self) -> frozenset[int]:
        """The videos an admin marked unsafe (``unsafeReasons``: MODERATED)."""
        return (await self._hidden_sets())[1]

    async def _hidden_sets(self) -> tuple[np.ndarray, frozenset[int]]:
        now = time.monotonic()
        if self._hidden is not None and now - self._hidden[0] < self.max_age:
            return self._hidden[1]
        generation = self._generation
        # (tortoise types values_list(flat=True) as tuples: each is a list of ids)
        unavailable = cast(
            list[int], await Video.filter(availability__in=HIDDEN).values_list("id", flat=True)
        )
        moderated = frozenset(
            cast(list[int], await VideoModeration.all().values_list("video_id", flat=True))
        )
        sets = (np.unique(np.array([*unavailable, *moderated], np.int64)), moderated)
        if generation == self._generation and self.max_age > 0:
            self._hidden = (now, sets)
        return sets
