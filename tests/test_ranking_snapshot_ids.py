"""Ranking snapshot ids are remembered per (sorted order, arguments, mask): a
remembered id must always be the digest of what the snapshot holds."""

from __future__ import annotations

import hashlib

import numpy as np

from app.resolvers import rankings
from app.resolvers.rankings import Snapshot


def digest(snap: Snapshot) -> int:
    d = hashlib.blake2b(digest_size=4)
    for part in (snap.params.encode(), snap.ids.tobytes(), snap.scores.tobytes()):
        d.update(part)
    return int.from_bytes(d.digest()) & 0x7FFFFFFF


def test_remembered_ids_are_the_digests() -> None:
    ids, scores = np.arange(10, 0, -1, dtype=np.int64), np.linspace(9.0, 0.0, 10)
    masks = [None, np.arange(10) % 2 == 0, np.arange(10) != 3, np.arange(10) != 3]
    seen = set()
    for params in ('["a"]', '["b"]', '["a"]'):
        for keep in masks:
            if keep is None:
                snap, kept = Snapshot(params, 1, ids, scores), b""
            else:
                snap = Snapshot(params, 1, ids[keep], scores[keep])
                kept = np.packbits(keep).tobytes()
            got = rankings._snapshot_id(params, ids, kept, snap)
            assert got == digest(snap)
            seen.add(got)
    assert len(seen) == 6  # 2 params x 3 distinct masks
    # a new order array (a new score version) is never answered from an old one's entry
    ids2, scores2 = ids.copy(), scores + 1
    snap = Snapshot('["a"]', 2, ids2, scores2)
    assert rankings._snapshot_id('["a"]', ids2, b"", snap) == digest(snap)


def test_cursor_text_is_the_json_of_its_key() -> None:
    """encode_cursor's fast path writes the characters json.dumps writes."""
    import base64
    import json

    from app.resolvers.pagination import Key, decode_cursor, encode_cursor

    rng = np.random.default_rng(0)
    scores = [*np.round(rng.normal(0, 60, 20_000), 6).tolist(), 0.0, -0.0, 1e-7, 1e22, 5e-324,
              123456789.123456, -100.0, float("nan"), float("inf"), 3, np.float64(1.5)]  # fmt: skip
    kind = rankings.CURSOR_KIND
    for score in scores:
        for snapshot_id, vid in ((0, 0), (2**31 - 1, 123), (17, 2**31 - 1)):
            got = encode_cursor(kind, snapshot_id, score, vid)
            reference = json.dumps([kind, snapshot_id, score, vid])
            assert got == base64.urlsafe_b64encode(reference.encode()).decode()
            if isinstance(score, float) and np.isfinite(score):
                keys = (Key.ID, Key.SCORE, Key.ID)
                assert decode_cursor(kind, got, keys) == [snapshot_id, score, vid]
