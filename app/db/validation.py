"""Input checks shared by the importer, the CLI and the API.

Each failure is an :class:`~app.errors.InvalidInput` carrying an ``ErrorCode`` and
the ``field`` it concerns, so the API can turn it into a ``userErrors`` entry and
the importer into a "line N: reason" report. The database enforces the same rules
with constraints (app/db/models.py); these checks exist to fail early and clearly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from app.criteria import CRITERION_INDEX
from app.db import usernames
from app.errors import InvalidInput  # the API's one error type (re-exported here)

YOUTUBE_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
DEFAULT_SCORE_MAX = 10
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def youtube_id(value: str, field: str = "youtubeId") -> str:
    if not isinstance(value, str) or not YOUTUBE_ID_RE.fullmatch(value):
        raise InvalidInput(
            field, f"{value!r} is not a YouTube video id (11 of A-Z a-z 0-9 _ -)", "BAD_VIDEO_ID"
        )
    return value


def username(value: str, field: str = "username") -> str:
    """The username as stored (NFKC, trimmed: see app/db/usernames.py), if valid."""
    if not isinstance(value, str):
        raise InvalidInput(field, "a username is text", "BAD_USERNAME")
    name = usernames.normalize(value)
    if (why := usernames.problem(name)) is not None:
        raise InvalidInput(field, why, "BAD_USERNAME")
    return name


def criterion(value: str, field: str = "criterion") -> str:
    if value not in CRITERION_INDEX:
        raise InvalidInput(field, f"unknown criterion {value!r}", "UNKNOWN_CRITERION")
    return value


def score(value: int, score_max: int, field: str = "score") -> tuple[int, int]:
    if isinstance(score_max, bool) or not isinstance(score_max, int) or score_max <= 0:
        raise InvalidInput(
            "scoreMax", f"score_max must be a positive integer, got {score_max!r}", "BAD_SCORE_MAX"
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"score must be an integer, got {value!r}", "BAD_SCORE")
    if abs(value) > score_max:
        raise InvalidInput(
            field, f"score {value} is outside [-{score_max}, {score_max}]", "SCORE_OUT_OF_RANGE"
        )
    return value, score_max


def distinct_videos(video_a: str, video_b: str, field: str = "videoB") -> None:
    if video_a == video_b:
        raise InvalidInput(field, "a video cannot be compared with itself", "SAME_VIDEO")


def utc(value: datetime, field: str, *, clamp: bool = False) -> datetime:
    """``value`` as an aware UTC datetime (naive means UTC).

    Converting can leave the years 1..9999 (``0001-01-01T00:00:00+14:00`` is in year
    0 in UTC): then the nearest representable instant if ``clamp`` (a filter bound
    beyond every date), else an ``InvalidInput``.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        if not clamp:
            raise InvalidInput(
                field, "is outside the years 1 to 9999 once converted to UTC", "OUT_OF_RANGE"
            ) from None
        return EARLIEST if value.year < 5000 else LATEST


def unit_interval(value: float, field: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(field, f"must be between 0 and 1, got {value!r}", "OUT_OF_RANGE")
    return float(value)
