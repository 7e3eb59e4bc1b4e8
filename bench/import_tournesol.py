"""Time `import-tournesol` of a Tournesol sample into a fresh SQLite file (and
optionally PostgreSQL), several runs; the last line is one JSON object.

    .venv/bin/python bench/import_tournesol.py [--runs 5] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "data" / "tournesol" / "tiny_tournesol_2024-01"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host="127.0.0.1", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def one_run(url: str) -> tuple[float, float]:
    """Seconds for a first import into an empty database, then for a re-import."""
    await connection.migrate(url)
    await connection.init(url)
    try:
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            await import_dataset(read_dataset(TINY))
            timings.append(time.perf_counter() - start)
        return timings[0], timings[1]
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    results = {}
    backends = ["sqlite"] + (["postgres"] if args.postgres else [])
    for backend in backends:
        firsts, agains = [], []
        for _ in range(args.runs):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    first, again = await one_run(f"sqlite://{tmp}/bench.sqlite3")
            else:
                name = f"sunrank_bench_{uuid.uuid4().hex[:8]}"
                await _admin(f'CREATE DATABASE "{name}"')
                try:
                    first, again = await one_run(f"postgres://postgres@127.0.0.1:5432/{name}")
                finally:
                    await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            firsts.append(first)
            agains.append(again)
        for label, values in (("import", firsts), ("reimport", agains)):
            key = f"{backend}_{label}_s"
            results[key] = {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
            print(
                f"{backend:8} {label:9} tiny_tournesol_2024-01 (38,387 rows, {args.runs} runs): "
                f"median {results[key]['median']:.2f} s  [{results[key]['min']:.2f}"
                f"–{results[key]['max']:.2f}]"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
