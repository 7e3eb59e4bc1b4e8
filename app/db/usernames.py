"""Usernames: what a valid one is, and the key that makes look-alikes collide.

Tournesol's public usernames are free text (``Pierre M``, ``Helios-火リオス``), so
Sunrank accepts any printable name: NFKC-normalised, trimmed, 1 to 150
characters, no control, format (invisible), unassigned or private-use characters.

Two names that a reader could take for one another must not both exist. Their
**key** is equal: NFKC with case folding (``ａｄｍｉｎ``, ``Admin`` → ``admin``),
runs of spaces collapsed, then the confusable *skeleton* of Unicode TR39 computed
by ICU (``аdmin`` with a Cyrillic а, ``adrnin`` → ``adrnin``), folded once more so
that a skeleton's capitals (``0`` → ``O``) meet their lower case. ``User.username_key``
holds it under a UNIQUE constraint. A skeleton is for comparing only, never shown.

The skeleton comes from the ICU library PyICU links; its confusables data follow
that ICU's Unicode version. Keys computed under another ICU version can differ for
rare characters, so every process sharing a database should link the same ICU.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import icu

MAX_LENGTH = 150
# Bytes of a key: a skeleton can be longer than its name (``m`` → ``rn``). The
# column holds 1,000 characters, with room for the suffix of a look-alike kept by
# an import or a migration (a tab and 16 hex digits, or an id).
MAX_KEY_BYTES = 960
# Cc control, Cf format (zero-width and bidi controls), Cs surrogate, Co private
# use, Cn unassigned, Zl/Zp line and paragraph separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

_checker = icu.SpoofChecker()


def normalize(name: str) -> str:
    """The form a username is stored and shown in: NFKC, trimmed."""
    return unicodedata.normalize("NFKC", name).strip()


def problem(name: str) -> str | None:
    """Why ``name`` (already normalised) cannot be a username, or None."""
    if not name:
        return "a username cannot be empty"
    if len(name) > MAX_LENGTH:
        return f"a username has at most {MAX_LENGTH} characters"
    for char in name:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            return f"a username cannot contain the invisible or control character U+{ord(char):04X}"
        if char.isspace() and char != " ":
            return "the only space a username can contain is the plain space"
    if len(key(name).encode()) > MAX_KEY_BYTES:
        return "this username is too long"
    return None


@lru_cache(maxsize=4096)
def key(name: str) -> str:
    """The uniqueness key: equal for names that differ by width, case or look-alike
    characters."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    skeleton = _checker.getSkeleton(0, " ".join(folded.split()))
    return unicodedata.normalize("NFD", skeleton.casefold())
