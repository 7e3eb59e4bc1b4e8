"""Pinned ranking snapshots in the shared cache (app/resolvers/rankings.py): size of
the encoding and cost of storing/reading one, against a naive JSON-lists encoding
measured in the same run (the baseline), for rankings of several sizes.

    .venv/bin/python bench/ranking_snapshot.py [--redis redis://127.0.0.1:6379/0]

With ``--redis``, also one set + get round trip through app.cache.Cache on Redis
(keys under a throwaway namespace, expiring after 60 s). Prints median and spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import numpy as np
from _common import emit, spread

from app.cache import Cache
from app.resolvers import rankings

SIZES = (1_000, 10_000, 100_000, 500_000)
REPEATS = 7


def sample(n: int, rng: np.random.Generator) -> rankings.Snapshot:
    """Like a real one: database ids in score order, scores rounded to 6 decimals."""
    scores = np.round(np.sort(rng.normal(30, 25, n))[::-1], 6)
    ids = rng.permutation(int(n * 1.2))[:n].astype(np.int64) + 1
    return rankings.Snapshot('[["largely_recommended", 1.0]]', 1, ids, scores)


def naive(snap: rankings.Snapshot) -> str:
    return json.dumps([snap.params, snap.version, snap.ids.tolist(), snap.scores.tolist()])


def timed(fn, *args) -> tuple[list[float], object]:
    out, times = None, []
    for _ in range(REPEATS):
        t = time.perf_counter()
        out = fn(*args)
        times.append((time.perf_counter() - t) * 1000)
    return times, out


async def redis_round_trip(url: str, encoded: str) -> list[float]:
    cache = Cache(url, namespace=f"bench-{uuid.uuid4().hex[:8]}")
    times = []
    try:
        for i in range(REPEATS):
            t = time.perf_counter()
            await cache.set(f"snap:{i}", encoded, 60)
            assert await cache.get(f"snap:{i}") == encoded
            times.append((time.perf_counter() - t) * 1000)
    finally:
        await cache.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    results = []
    for n in SIZES:
        snap = sample(n, rng)
        enc_t, encoded = timed(rankings._encode, snap)
        dec_t, _ = timed(rankings._decode, encoded, 60.0)
        base_enc_t, base = timed(naive, snap)
        base_dec_t, _ = timed(json.loads, base)
        row = {
            "videos": n,
            "bytes": len(encoded),
            "bytes_per_video": len(encoded) / n,
            "bytes_vs_json": len(encoded) / len(base),
            "encode_ms": spread(enc_t),
            "decode_ms": spread(dec_t),
            "encode_vs_json": spread(enc_t)["median"] / spread(base_enc_t)["median"],
            "decode_vs_json": spread(dec_t)["median"] / spread(base_dec_t)["median"],
            "shared": len(encoded) <= rankings.MAX_SHARED_BYTES,
        }
        if args.redis and row["shared"]:
            row["redis_set_get_ms"] = spread(asyncio.run(redis_round_trip(args.redis, encoded)))
        print(
            f"{n:>7} videos: {len(encoded) / 1024:8.1f} KiB ({row['bytes_per_video']:.2f} B/video,"
            f" {row['bytes_vs_json']:.2f}x JSON), encode {row['encode_ms']['median']:.2f} ms"
            f" ({row['encode_vs_json']:.2f}x JSON), decode {row['decode_ms']['median']:.2f} ms"
            f" ({row['decode_vs_json']:.2f}x JSON)"
            + (
                f", redis set+get {row['redis_set_get_ms']['median']:.2f} ms"
                if "redis_set_get_ms" in row
                else ""
            )
        )
        results.append(row)
    emit({"bench": "ranking_snapshot", "repeats": REPEATS, "results": results})


if __name__ == "__main__":
    main()
