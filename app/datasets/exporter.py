"""Build the public dataset in Tournesol's format, file by file (public ratings only).

Followed: Tournesol's ``backend/tournesol/lib/public_dataset.py`` and
``management/commands/create_dataset.py`` (tournesol-app/tournesol @ f8110b95):

- entries, in this order: ``README.txt``, ``LICENSE.txt``, ``metadata.json``,
  ``users.csv``, ``comparisons.csv``, ``individual_criteria_scores.csv``,
  ``collective_criteria_scores.csv``, ``vouchers.csv``; CSVs written by
  ``csv.DictWriter`` (comma, CRLF line ends, the same headers and column order);
- ``comparisons.csv``: comparisons made before the Monday 00:00 UTC of the current
  week (``data_included_until``), ``week_date`` the Monday of their week, sorted by
  username then submission time; only comparisons whose author's ratings of both
  videos are public;
- ``users.csv``: contributors with at least one public comparison, ``trust_score``
  rounded to 2 decimals; scores and uncertainties to 2 decimals, voting rights to 3;
- ``vouchers.csv``: every vouch (Sunrank has no private vouch), value 1.0.

Differences, on purpose: video_a/video_b are the stored orientation (a comparison
is stored once per unordered pair; the score's sign follows), and names sort by the
ICU root collation (Tournesol's follow its PostgreSQL collation, which the samples
match). metadata.json names Sunrank's learner where Tournesol names Solidago.

The bytes depend on the data only (zip timestamps are ``data_included_until``,
rows are sorted), so two builds of the same data and week are identical:
``sunrank export-tournesol`` and ``GET /exports/all.zip`` give the same file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata as package_metadata
from importlib import resources
from pathlib import Path
from typing import Any, cast

import icu
from tortoise import connections
from tortoise.functions import Max
from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.criteria import CRITERION_NAMES
from app.db.models import (
    ComparisonScore,
    ContributorScore,
    Event,
    RatingVisibility,
    User,
    VideoScore,
    Vouch,
)
from app.learner.hparams import HParams

PAGE = 5000  # rows per query (see _paged)
FLOAT_PRECISION = 2  # Tournesol's FLOAT_PRECISION
VOTING_RIGHT_PRECISION = 3  # "voting rights can be very small": one more digit
ALGORITHM = "licchavi-uniform-gbt"  # DESIGN.md §4: Licchavi coupling, uniform GBT
LICENSE = "ODC-By-1.0"

HEADERS: dict[str, list[str]] = {
    "users.csv": ["public_username", "trust_score"],
    "comparisons.csv": [
        "public_username", "video_a", "video_b", "criteria", "score", "score_max", "week_date",
    ],
    "individual_criteria_scores.csv": [
        "public_username", "video", "criteria", "score", "uncertainty", "voting_right",
    ],
    "collective_criteria_scores.csv": ["video", "criteria", "score", "uncertainty"],
    "vouchers.csv": ["by_username", "to_username", "value"],
}  # fmt: skip
ENTRIES = ("README.txt", "LICENSE.txt", "metadata.json", *HEADERS)

_collator = icu.Collator.createInstance(icu.Locale.getRoot())
_CRITERION_ORDER = {name: i for i, name in enumerate(CRITERION_NAMES)}


def _text_key(text: str) -> bytes:
    return _collator.getSortKey(text)


@dataclass(frozen=True)
class Export:
    """One build: the zip's bytes, ``comparisons.csv`` alone, and row counts."""

    zip_bytes: bytes
    comparisons_csv: bytes
    rows: dict[str, int]
    data_included_until: datetime


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of ``moment``'s week (PostgreSQL's ``date_trunc('week', …)``)."""
    moment = moment.astimezone(UTC)
    return datetime.combine(moment.date() - timedelta(days=moment.weekday()), datetime.min.time(),
                            tzinfo=UTC)  # fmt: skip


def _csv(header: list[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # the excel dialect, as csv.DictWriter: CRLF line ends
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def algorithm_metadata() -> dict[str, Any]:
    hparams = HParams()
    parameters = {
        k: v
        for k, v in asdict(hparams).items()
        if k not in ("fit_gtol", "fit_max_iter", "fit_max_cg", "online_steps", "online_max_block")
    }
    return {"name": ALGORITHM, "version": hparams.digest(), "parameters": parameters}


def sunrank_version() -> str:
    try:
        return package_metadata.version("sunrank")
    except package_metadata.PackageNotFoundError:  # a source tree without install
        return "unknown"


async def _read(until: datetime) -> dict[str, Any]:
    """Every row the files need, from one snapshot on PostgreSQL.

    On SQLite the pages are read outside a transaction: the process shares one
    connection, and an open transaction would hold it (and every request) for the
    whole build. A row rewritten meanwhile (a changed comparison, scores the learner
    flushed) comes back under a new, higher id, so :func:`_paged` keeps the newest
    row of each natural key.
    """
    dialect = connections.get(Event._meta.default_connection).capabilities.dialect
    if dialect == "sqlite":
        return await _queries(None, until)
    async with in_transaction() as conn:
        await conn.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return await _queries(conn, until)


async def _paged(
    model: type[Model], conn: Any, fields: tuple[str, ...], key: tuple[int, ...], page: int = PAGE
) -> list[tuple]:
    """``values_list(*fields)`` in pages by primary key, so that a big table never
    holds the event loop (rows are decoded there) for more than one page; rows of
    the same ``key`` (indexes into ``fields``): the last one read wins."""
    rows: dict[tuple, tuple] = {}
    last = 0
    while True:
        batch = (
            await model.filter(id__gt=last).using_db(conn).order_by("id")
            .limit(page).values_list("id", *fields)
        )  # fmt: skip
        for row in batch:
            values = tuple(row[1:])
            rows[tuple(values[i] for i in key)] = values
        if len(batch) < page:
            return list(rows.values())
        last = batch[-1][0]


async def _queries(conn: Any, until: datetime) -> dict[str, Any]:
    # tortoise types values_list(flat=True) as tuples; it is the list of the one column.
    last_event = cast(
        list[int | None],
        await Event.all().using_db(conn).annotate(m=Max("id")).values_list("m", flat=True),
    )
    private = set(
        await RatingVisibility.filter(is_public=False)
        .using_db(conn)
        .values_list("user_id", "video_id")
    )
    scores = await _paged(ComparisonScore, conn, (
        "comparison__user__username", "comparison__user_id",
        "comparison__video_a_id", "comparison__video_a__youtube_id",
        "comparison__video_b_id", "comparison__video_b__youtube_id",
        "criterion", "score", "score_max", "comparison__created_at", "comparison_id",
    ), key=(1, 2, 4, 6))  # fmt: skip
    public = [row for row in scores if (row[1], row[2]) not in private
              and (row[1], row[4]) not in private]  # fmt: skip
    contributors = {row[1] for row in public}
    trust = await _paged(User, conn, ("id", "username", "trust"), key=(0,))
    vouches = await _paged(Vouch, conn, ("voucher__username", "vouchee__username"), key=(0, 1))
    individual = await _paged(ContributorScore, conn, (
        "user__username", "user_id", "video_id", "video__youtube_id",
        "criterion", "score", "uncertainty", "voting_right",
    ), key=(1, 2, 4))  # fmt: skip
    collective = await _paged(
        VideoScore, conn, ("video__youtube_id", "criterion", "score", "uncertainty"), key=(0, 1)
    )
    return {
        "last_event_id": int(last_event[0] or 0) if last_event else 0,
        "comparisons": [row for row in public if row[9] < until],
        "users": [(name, t) for uid, name, t in trust if uid in contributors],
        "vouches": vouches,
        "individual": [row for row in individual if (row[1], row[2]) not in private],
        "collective": collective,
    }


def _files(data: dict[str, Any], until: datetime, generated_by: str) -> dict[str, str]:
    comparisons = sorted(
        data["comparisons"],
        key=lambda r: (_text_key(r[0]), r[9], r[10], _CRITERION_ORDER.get(r[6], 99)),
    )
    users = sorted(data["users"], key=lambda r: _text_key(r[0]))
    individual = sorted(data["individual"], key=lambda r: (_text_key(r[0]), _text_key(r[3]), r[4]))
    collective = sorted(data["collective"], key=lambda r: (_text_key(r[0]), r[1]))
    vouches = sorted(data["vouches"], key=lambda r: (_text_key(r[0]), _text_key(r[1])))
    metadata = {
        "data_included_until": until.isoformat(),
        "generated_by": generated_by,
        "sunrank_version": sunrank_version(),
        "license": LICENSE,
        "last_event_id": data["last_event_id"],
        "algorithm": algorithm_metadata(),
    }
    package = resources.files("app.datasets")
    return {
        "README.txt": package.joinpath("export_README.txt").read_text(encoding="utf-8"),
        "LICENSE.txt": package.joinpath("tournesol_LICENSE.txt").read_text(encoding="utf-8"),
        "metadata.json": json.dumps(metadata, indent=2),
        "users.csv": _csv(HEADERS["users.csv"], ((n, round(t, FLOAT_PRECISION)) for n, t in users)),
        "comparisons.csv": _csv(
            HEADERS["comparisons.csv"],
            (
                (name, a, b, crit, score, score_max, week_start(created).date().isoformat())
                for name, _, _, a, _, b, crit, score, score_max, created, _ in comparisons
            ),
        ),
        "individual_criteria_scores.csv": _csv(
            HEADERS["individual_criteria_scores.csv"],
            (
                (
                    name,
                    yt,
                    crit,
                    round(score, FLOAT_PRECISION),
                    round(unc, FLOAT_PRECISION),
                    round(vr, VOTING_RIGHT_PRECISION),
                )
                for name, _, _, yt, crit, score, unc, vr in individual
            ),
        ),
        "collective_criteria_scores.csv": _csv(
            HEADERS["collective_criteria_scores.csv"],
            (
                (yt, crit, round(score, FLOAT_PRECISION), round(unc, FLOAT_PRECISION))
                for yt, crit, score, unc in collective
            ),
        ),
        "vouchers.csv": _csv(HEADERS["vouchers.csv"], ((a, b, 1.0) for a, b in vouches)),
    }


def _zip(files: dict[str, str], stamp: datetime) -> bytes:
    out = io.BytesIO()
    date_time = stamp.timetuple()[:6]
    with zipfile.ZipFile(out, "w") as zf:
        for name in ENTRIES:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name].encode("utf-8"))
    return out.getvalue()


async def build_export(generated_by: str, now: datetime | None = None) -> Export:
    """Read the database and build the archive (the zip is made in memory)."""
    until = week_start(now or datetime.now(UTC))
    data = await _read(until)
    # Sorting, CSV and deflate are CPU work: off the event loop (a server builds too).
    files = await asyncio.to_thread(_files, data, until, generated_by)
    rows = {name: text.count("\n") - 1 for name, text in files.items() if name.endswith(".csv")}
    return Export(
        zip_bytes=await asyncio.to_thread(_zip, files, until),
        comparisons_csv=files["comparisons.csv"].encode("utf-8"),
        rows=rows,
        data_included_until=until,
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def export_dataset(
    out: str | Path, generated_by: str, now: datetime | None = None
) -> dict[str, int]:
    """``sunrank export-tournesol``: write the zip atomically; rows of each CSV."""
    export = await build_export(generated_by, now)
    write_atomically(Path(out), export.zip_bytes)
    return export.rows


async def _child_main(out: Path, generated_by: str) -> dict[str, Any]:
    from app.db import connection

    await connection.init(os.environ["SUNRANK_EXPORT_DB_URL"])  # no migrations: the server's
    try:
        export = await build_export(generated_by)
    finally:
        await connection.close()
    write_atomically(out, export.zip_bytes)
    return {"rows": export.rows, "data_included_until": export.data_included_until.isoformat()}


if __name__ == "__main__":
    # The server's builder (app/datasets/published.py) runs this in a child process, so
    # that reading and decoding every row never holds the server's event loop.
    # Usage: SUNRANK_EXPORT_DB_URL=... python -m app.datasets.exporter OUT GENERATED_BY
    import sys

    print(json.dumps(asyncio.run(_child_main(Path(sys.argv[1]), sys.argv[2]))))
