"""Relay connections in both directions (first/after, last/before) over a sorted list
in memory or a database query ordered by id; every page knows the list's size."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.resolvers.pagination import Key, check_window, decode_cursor, encode_cursor, window


@dataclass(frozen=True)
class Window:
    """Which page a client asks for, its size checked."""

    size: int
    backward: bool
    after: str | None
    before: str | None

    @classmethod
    def of(
        cls, first: int | None, after: str | None, last: int | None, before: str | None
    ) -> Window:
        size, backward = check_window(first, last)
        return cls(size, backward, after, before)

    def keys(self, kind: str, keys: tuple[Key, ...]) -> tuple[tuple | None, tuple | None]:
        """The decoded ``after`` and ``before`` keys (None when not given)."""
        return tuple(
            None if c is None else tuple(decode_cursor(kind, c, keys, arg))
            for arg, c in (("after", self.after), ("before", self.before))
        )  # type: ignore[return-value]


@dataclass
class Page:
    rows: list  # (cursor, item) pairs, or whatever the connection builds edges from
    has_next: bool
    has_previous: bool
    total: int


def in_memory(
    keys: Sequence[tuple], win: Window, kind: str, key_types: tuple[Key, ...]
) -> tuple[int, int, bool, bool]:
    """The slice of ``keys`` (sorted ascending, unique) a window selects; cursors hold
    a key. Returns (start, stop, has_previous, has_next)."""
    after, before = win.keys(kind, key_types)
    lo = 0 if after is None else bisect.bisect_right(keys, after)
    hi = len(keys) if before is None else bisect.bisect_left(keys, before)
    return window(len(keys), lo, hi, win.size, win.backward)


async def by_id(query: Any, win: Window, kind: str, cursor_id: Callable[[Any], int]) -> Page:
    """A page of ``query`` (a tortoise queryset, not yet ordered) in ascending id
    order; cursors hold the id. ``cursor_id`` gives a row's id."""
    after, before = win.keys(kind, (Key.ID,))
    total = await query.count()
    part = query
    if after is not None:
        part = part.filter(id__gt=after[0])
    if before is not None:
        part = part.filter(id__lt=before[0])
    rows = await part.order_by("-id" if win.backward else "id").limit(win.size + 1)
    more = len(rows) > win.size
    rows = rows[: win.size]
    if win.backward:
        rows.reverse()
        has_previous = more
        has_next = before is not None and await query.filter(id__gte=before[0]).exists()
    else:
        has_next = more
        has_previous = after is not None and await query.filter(id__lte=after[0]).exists()
    return Page(
        [(encode_cursor(kind, cursor_id(r)), r) for r in rows], has_next, has_previous, total
    )
