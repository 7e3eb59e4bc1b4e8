"""How long a public-dataset build holds the server's event loop.

Imports the demo data (tiny_tournesol_2024-01, ~38k comparison rows) into a fresh
database, then builds the export ``--rounds`` times each way, interleaved:

- ``in-process``: ``build_export`` on this event loop (the builder before; rows are
  read and decoded by the ORM on the loop, CSV and zip in a worker thread);
- ``child``: ``build_in_child`` (app/datasets/published.py), a child process
  ``python -m app.datasets.exporter``; the loop only waits and reads the zip back.

Meanwhile a ticker sleeps 5 ms at a time and records how late it wakes up: the
loop's stall, i.e. how long any request would wait. Prints per way the median and
spread (min–max) of the max stall and p99 stall per build, and the build wall time,
with ratios to in-process.

    .venv/bin/python bench/export_blocking.py [--rounds 5] [--db postgres|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.datasets.exporter import build_export  # noqa: E402
from app.datasets.importer import import_dataset  # noqa: E402
from app.datasets.published import build_in_child  # noqa: E402
from app.datasets.reader import read_dataset  # noqa: E402
from app.db import connection  # noqa: E402

DEMO = ROOT / "data" / "tournesol" / "tiny_tournesol_2024-01"
PG = "postgres://postgres@127.0.0.1:5432"
TICK = 0.005


async def measured(build) -> tuple[float, float, float]:
    """(max stall, p99 stall, wall seconds) of one build."""
    stalls: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(TICK)
            stalls.append(time.perf_counter() - t - TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await build()
    wall = time.perf_counter() - start
    done = True
    await task
    stalls.sort()
    return stalls[-1], stalls[int(0.99 * (len(stalls) - 1))], wall


def summary(values: list[float], unit: float = 1000.0) -> str:
    v = [x * unit for x in values]
    return f"median {statistics.median(v):8.1f}  spread {min(v):7.1f}–{max(v):7.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="sqlite")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be positive")
    tmp = Path(tempfile.mkdtemp(prefix="sunrank-export-bench-"))
    name = f"sunrank_bench_{uuid.uuid4().hex[:10]}"
    if args.db == "sqlite":
        url = f"sqlite://{tmp / 'db.sqlite3'}"
    else:
        admin = await asyncpg.connect(f"{PG}/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = f"{PG}/{name}"
    try:
        await connection.migrate(url)
        await connection.init(url)
        report = await import_dataset(read_dataset(DEMO))
        print(f"{args.db}: imported {DEMO.name}: {report.summary()}")
        settings = load_settings({}, data_dir=tmp, database_url=url)
        ways = {
            "in-process": lambda: build_export(settings.public_url),
            "child": lambda: build_in_child(settings),
        }
        results: dict[str, list[tuple[float, float, float]]] = {w: [] for w in ways}
        for r in range(args.rounds):
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            for way in order:
                results[way].append(await measured(ways[way]))
        base = {k: statistics.median(x[i] for x in results["in-process"]) for k, i in
                (("max", 0), ("p99", 1), ("wall", 2))}  # fmt: skip
        print(f"{args.rounds} rounds, interleaved; ms (ratio of medians to in-process)")
        for way, rows in results.items():
            for label, i in (("max stall", 0), ("p99 stall", 1), ("build wall", 2)):
                values = [x[i] for x in rows]
                ratio = statistics.median(values) / base[("max", "p99", "wall")[i]]
                print(f"  {way:10s} {label:10s} {summary(values)}  x{ratio:.2f}")
        await connection.close()
    finally:
        if args.db == "postgres":
            admin = await asyncpg.connect(f"{PG}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
