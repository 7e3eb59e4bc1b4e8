"""What GraphQL over HTTP's media type and automatic persisted queries cost.

    .venv/bin/python bench/graphql_http.py [--seconds 4] [--repeat 3] [--clients 8]

One ``sunrank serve`` (bench/api.py's setup: the tiny dataset, uvicorn, one worker,
loopback) with the cache off, so every request runs the query. The same ``rankings``
query, four ways, interleaved run by run (the order rotating from run to run):

- ``json``: POST with the text, ``Accept: application/json`` (the baseline);
- ``graphql_response``: the same with ``Accept: application/graphql-response+json``
  (app/http/media.py relabels the answer);
- ``apq_post``: POST with the SHA-256 only (app/http/persisted.py looks it up);
- ``apq_get``: GET ``?extensions=…`` with the hash only.

Prints median and spread of req/s per variant and its ratio to ``json`` measured in
the same run. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api import HOST, RANKINGS, free_port, prepare, start, stop


async def _request(reader, writer, raw: bytes) -> int:
    writer.write(raw)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length)
    if status != 200 or b"edges" not in body:
        raise RuntimeError(f"{status}: {body[:200]!r}")
    return status


async def load(port: int, raw: bytes, clients: int, seconds: float) -> float:
    done = 0
    stop_at = time.perf_counter() + 1.0 + seconds
    measure_from = time.perf_counter() + 1.0

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while (now := time.perf_counter()) < stop_at:
                await _request(reader, writer, raw)
                done += now >= measure_from
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


def requests(port: int) -> dict[str, bytes]:
    digest = hashlib.sha256(RANKINGS.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    def post(body: dict, accept: str) -> bytes:
        data = json.dumps(body).encode()
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Accept: {accept}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    get = (
        f"GET /graphql?extensions={quote(json.dumps(ext))} HTTP/1.1\r\nHost: {HOST}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    return {
        "json": post({"query": RANKINGS}, "application/json"),
        "graphql_response": post({"query": RANKINGS}, "application/graphql-response+json"),
        "apq_post": post({"extensions": ext}, "application/json"),
        "apq_get": get,
        # registers the hash (sent once before the runs)
        "_register": post({"query": RANKINGS, "extensions": ext}, "application/json"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sunrank-bench-http-"))
    db_url = f"sqlite://{tmp / 'sunrank.sqlite3'}"
    asyncio.run(prepare(db_url))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env |= {
        "SUNRANK_DATA_DIR": str(tmp), "SUNRANK_DATABASE_URL": db_url,
        "SUNRANK_LOG_LEVEL": "warning", "SUNRANK_METADATA_WORKER": "false",
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000000",
        "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
        "SUNRANK_HOST": HOST, "SUNRANK_PORT": str(port), "SUNRANK_CACHE_ENABLED": "false",
    }  # fmt: skip
    proc = start([sys.executable, "-m", "app", "serve"], env, port)
    try:
        raws = requests(port)
        asyncio.run(load(port, raws.pop("_register"), 1, 0.1))
        rates: dict[str, list[float]] = {name: [] for name in raws}
        names = list(raws)
        for r in range(args.repeat):  # the order rotates: the machine's load drifts
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rates[name].append(asyncio.run(load(port, raws[name], args.clients, args.seconds)))
    finally:
        stop(proc)
    base = statistics.median(rates["json"])
    out = {}
    for name, values in rates.items():
        median = statistics.median(values)
        out[name] = {
            "rps": round(median, 1), "rps_min": round(min(values), 1),
            "rps_max": round(max(values), 1), "vs_json": round(median / base, 3),
        }  # fmt: skip
        print(
            f"{name:17s} {median:8.1f} req/s (min {min(values):.1f}, max {max(values):.1f})"
            f"  {median / base:.3f} x json"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
