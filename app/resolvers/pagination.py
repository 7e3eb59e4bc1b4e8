"""Opaque keyset cursors and page-size checks shared by every connection."""

from __future__ import annotations

import base64
import json

MAX_PAGE = 100


class PaginationError(ValueError):
    pass


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise PaginationError(f"`first` must be between 1 and {MAX_PAGE}, got {first}")
    return first


def encode_cursor(kind: str, *key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, *key]).encode()).decode()


def decode_cursor(kind: str, cursor: str, arity: int) -> list:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise PaginationError("`after` is not a cursor this API issued") from None
    if not isinstance(decoded, list) or len(decoded) != arity + 1 or decoded[0] != kind:
        raise PaginationError(f"`after` is not a {kind} cursor")
    return decoded[1:]
