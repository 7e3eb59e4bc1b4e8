"""The learner's side of the database: read its inputs, write its scores.

Reads return plain NumPy/Python data the synchronous :class:`Learner` loads on its
worker thread; writes take plain rows gathered on that thread. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from app.criteria import CRITERION_INDEX, CRITERION_NAMES
from app.db.models import (
    AccountDeactivation,
    ComparisonScore,
    ContributorScore,
    Event,
    RatingVisibility,
    User,
    VideoScore,
    Vouch,
)

BATCH = 2000


@dataclass
class Inputs:
    """Everything a full fit needs, as of event ``watermark``."""

    comparisons: np.ndarray  # (N, 6) user, video_a, video_b, criterion_idx, score, score_max
    pretrust: dict[int, float]
    vouches: list[tuple[int, int]]
    private: list[tuple[int, int]]
    watermark: int


async def last_event_id() -> int:
    row = await Event.all().annotate(m=Max("id")).values_list("m", flat=True)
    value: Any = row[0] if row else None
    return int(value or 0)


async def load_inputs() -> Inputs:
    """Read the learner's inputs in one transaction (one consistent snapshot).

    Events after the returned watermark may or may not be reflected in the data
    read; replaying them on top is harmless because every event is idempotent for
    the learner (it carries the new state, not a delta).
    """
    async with in_transaction() as conn:
        watermark = await last_event_id()
        # Accounts an admin deactivated count for nothing (app/accounts/deactivation.py).
        off = set(await AccountDeactivation.all().using_db(conn).values_list("user_id", flat=True))
        scores = ComparisonScore.exclude(comparison__user_id__in=off).using_db(conn)
        rows = await scores.values_list(
            "comparison__user_id", "comparison__video_a_id", "comparison__video_b_id",
            "criterion", "score", "score_max",
        )  # fmt: skip
        pretrust = dict(
            await User.filter(pretrust__gt=0)
            .exclude(id__in=off)
            .using_db(conn)
            .values_list("id", "pretrust")
        )
        # An imported vouch is already inside its vouchee's imported trust (app/datasets).
        vouches = (
            await Vouch.filter(imported=False)
            .exclude(voucher_id__in=off)
            .exclude(vouchee_id__in=off)
            .using_db(conn)
            .values_list("voucher_id", "vouchee_id")
        )
        private = (
            await RatingVisibility.filter(is_public=False)
            .exclude(user_id__in=off)
            .using_db(conn)
            .values_list("user_id", "video_id")
        )
    comparisons = np.array(
        [(u, a, b, CRITERION_INDEX[c], s, m) for u, a, b, c, s, m in rows], np.int64
    ).reshape(-1, 6)
    return Inputs(comparisons, pretrust, list(vouches), list(private), watermark)


async def events_after(watermark: int, upto: int | None = None, limit: int = 10_000) -> list[Event]:
    query = Event.filter(id__gt=watermark).order_by("id").limit(limit)
    if upto is not None:
        query = query.filter(id__lte=upto)
    return await query


@dataclass
class ScoreRows:
    """Scores to write: the rows of the given videos and users replace theirs."""

    videos: list[int]  # video ids whose VideoScore rows are rewritten
    video_rows: list[tuple[int, int, float, float, int, int]]  # video, crit, score, unc, nc, nk
    users: list[int]  # user ids whose ContributorScore rows are rewritten
    contributor_rows: list[tuple[int, int, int, float, float, float]]  # user, video, crit, ...
    trust: dict[int, float]


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _criterion(index: Any) -> str:
    return CRITERION_NAMES[index]


# Score rows go in as plain parameters, no ORM objects (building those took ~20 µs a
# row, on the event loop): each table's columns and how a row's value becomes one
# (NumPy scalars to Python's, a criterion index to its name).
_INSERT: dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    "video_score": (("video_id", int), ("criterion", _criterion), ("score", float),
                    ("uncertainty", float), ("n_contributors", int), ("n_comparisons", int)),
    "contributor_score": (("user_id", int), ("video_id", int), ("criterion", _criterion),
                          ("score", float), ("uncertainty", float), ("voting_right", float)),
}  # fmt: skip


async def _insert(conn: Any, table: str, rows: list[tuple]) -> None:
    """``INSERT`` ``rows`` (``_INSERT[table]``'s columns) in batches, each built just
    before it is sent."""
    columns = [name for name, _ in _INSERT[table]]
    convert = [to for _, to in _INSERT[table]]
    if conn.capabilities.dialect == "postgres":
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    else:
        marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    for chunk in _chunks(rows, BATCH):
        params = [[to(x) for to, x in zip(convert, row, strict=True)] for row in chunk]
        await conn.execute_many(sql, params)


async def write_scores(rows: ScoreRows) -> None:
    """Replace the score rows of ``rows.videos`` / ``rows.users`` in one transaction.

    It runs on the event loop beside requests (after refits, at checkpoints): rows go
    in as parameter lists in batches of ``BATCH``, the loop serving between batches.
    """
    async with in_transaction() as conn:
        for chunk in _chunks(rows.videos):
            await VideoScore.filter(video_id__in=chunk).using_db(conn).delete()
        await _insert(conn, "video_score", rows.video_rows)
        for chunk in _chunks(rows.users):
            await ContributorScore.filter(user_id__in=chunk).using_db(conn).delete()
        await _insert(conn, "contributor_score", rows.contributor_rows)
        for user_id, trust in rows.trust.items():
            await User.filter(id=user_id).using_db(conn).update(trust=min(1.0, max(0.0, trust)))


# ---------------------------------------------------------------- published fitted states
# ``learner_checkpoint`` (migration 0050, PostgreSQL only): raw SQL, no ORM model, since
# only the engine reads or writes it.
KEEP_PUBLISHED = 3


@dataclass(frozen=True)
class Published:
    id: int
    watermark: int
    hparams_digest: str


def _conn() -> Any:
    from tortoise import connections

    return connections.get(next(iter(connections.db_config)))


async def publish_checkpoint(data: bytes, watermark: int, digest: str) -> int:
    """Store one fitted state; keep the newest ``KEEP_PUBLISHED``. Returns its id."""
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "INSERT INTO learner_checkpoint (watermark, hparams_digest, size_bytes, data) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            [watermark, digest, len(data), data],
        )
        new_id = int(rows[0]["id"])
        await conn.execute_query(
            "DELETE FROM learner_checkpoint WHERE id <= $1", [new_id - KEEP_PUBLISHED]
        )
    return new_id


async def newest_checkpoint(digest: str) -> Published | None:
    """The newest published state written with these hyper-parameters, if any."""
    rows = await _conn().execute_query_dict(
        "SELECT id, watermark, hparams_digest FROM learner_checkpoint "
        "WHERE hparams_digest = $1 ORDER BY id DESC LIMIT 1",
        [digest],
    )
    if not rows:
        return None
    row = rows[0]
    return Published(int(row["id"]), int(row["watermark"]), str(row["hparams_digest"]))


async def checkpoint_bytes(checkpoint_id: int) -> bytes | None:
    rows = await _conn().execute_query_dict(
        "SELECT data FROM learner_checkpoint WHERE id = $1", [checkpoint_id]
    )
    return bytes(rows[0]["data"]) if rows else None
