"""Opaque keyset cursors and page-size checks shared by every connection.

A cursor is base64url of the JSON list ``[kind, key...]``. Clients can send
anything, so :func:`decode_cursor` checks every key element against the kind of
value this API puts there (a database id, a finite score) before it reaches a
query: NaN, ``1e400``, ``10**30``, nested lists or strings are a ``PaginationError``
(``BAD_PAGINATION``), never an internal error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from enum import Enum

from app.errors import ErrorCode, InvalidInput

MAX_PAGE = 100
# Far longer than any cursor we issue (a kind, a score and an id): a client cannot
# make the server decode megabytes.
MAX_CURSOR_LENGTH = 256
# Database ids are 32-bit integers (PostgreSQL ``integer``): a larger value would
# fail in the database instead of selecting nothing.
MAX_ID = 2**31 - 1


class PaginationError(InvalidInput):
    """A paging argument this API cannot honour: an :class:`InvalidInput` coded
    ``BAD_PAGINATION`` (or ``STALE_CURSOR``), kept as a name for the raise sites."""

    def __init__(
        self, message: str, field: str = "", code: ErrorCode | str = ErrorCode.BAD_PAGINATION
    ) -> None:
        super().__init__(field, message, code)


class Key(Enum):
    """What one element of a cursor's key holds."""

    ID = "id"  # a database id: an integer in [0, MAX_ID]
    SCORE = "score"  # a finite number


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise PaginationError(f"`first` must be between 1 and {MAX_PAGE}, got {first}")
    return first


def check_window(first: int | None, last: int | None, default: int = 20) -> tuple[int, bool]:
    """The page size and whether it is taken from the end (``last``, Relay's backward
    paging). Giving both is ambiguous (Relay discourages it): an error."""
    if first is not None and last is not None:
        raise PaginationError("give `first` or `last`, not both")
    if last is not None:
        if not 1 <= last <= MAX_PAGE:
            raise PaginationError(f"`last` must be between 1 and {MAX_PAGE}, got {last}")
        return last, True
    return check_first(default if first is None else first), False


def window(n: int, lo: int, hi: int, size: int, backward: bool) -> tuple[int, int, bool, bool]:
    """The slice ``[start, stop)`` of ``size`` items within ``[lo, hi)`` of a sorted list
    of ``n`` (``lo``: just after ``after``, ``hi``: ``before``), from the start or the
    end, and whether items precede and follow it in the whole list."""
    hi = max(lo, hi)
    start, stop = (max(lo, hi - size), hi) if backward else (lo, min(hi, lo + size))
    return start, stop, start > 0, stop < n


def encode_cursor(kind: str, *key: object) -> str:
    """The cursor of ``key``: base64 of the JSON list ``[kind, *key]``."""
    if all(type(k) is int or (type(k) is float and math.isfinite(k)) for k in key):
        # A ranking page writes 20 of these: json.dumps' per-call encoder was ~5 % of
        # a cold request. For ints and finite floats JSON writes their repr.
        text = f"[{_quoted(kind)}, {', '.join(map(repr, key))}]" if key else f"[{_quoted(kind)}]"
    else:
        text = json.dumps([kind, *key])
    return base64.urlsafe_b64encode(text.encode()).decode()


@functools.cache
def _quoted(kind: str) -> str:
    return json.dumps(kind)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")  # json.loads accepts NaN and Infinity


def decode_cursor(
    kind: str, cursor: str, keys: tuple[Key, ...], arg: str = "after"
) -> list[int | float]:
    """The key of a cursor of ``kind`` given as argument ``arg``, element by element as
    ``keys`` says."""
    not_ours = PaginationError(f"`{arg}` is not a cursor this API issued")
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise not_ours
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
        decoded = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, binascii.Error, UnicodeError):
        raise not_ours from None
    if not isinstance(decoded, list) or len(decoded) != len(keys) + 1 or decoded[0] != kind:
        raise PaginationError(f"`{arg}` is not a {kind} cursor")
    pairs = zip(decoded[1:], keys, strict=True)
    return [_key_element(value, key, kind, arg) for value, key in pairs]


def _key_element(value: object, key: Key, kind: str, arg: str) -> int | float:
    bad = PaginationError(f"`{arg}` is not a valid {kind} cursor")
    if isinstance(value, bool):  # a bool is an int to Python, never to us
        raise bad
    if key is Key.ID:
        if not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise bad
        return value
    if isinstance(value, int) and abs(value) <= 2**53:
        return float(value)
    if not isinstance(value, float) or not math.isfinite(value):
        raise bad
    return value
