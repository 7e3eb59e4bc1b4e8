"""Input checks shared by the importer, the CLI and the API.

Each failure is an :class:`InvalidInput` carrying a machine-readable ``code`` and
the ``field`` it concerns, so the API can turn it into a ``userErrors`` entry and
the importer into a "line N: reason" report. The database enforces the same rules
with constraints (app/db/models.py); these checks exist to fail early and clearly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.criteria import CRITERION_INDEX

YOUTUBE_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
USERNAME_RE = re.compile(r"[\w.@+-]{1,150}")
DEFAULT_SCORE_MAX = 10


@dataclass
class InvalidInput(ValueError):
    field: str
    message: str
    code: str = "INVALID"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def youtube_id(value: str, field: str = "youtubeId") -> str:
    if not isinstance(value, str) or not YOUTUBE_ID_RE.fullmatch(value):
        raise InvalidInput(
            field, f"{value!r} is not a YouTube video id (11 of A-Z a-z 0-9 _ -)", "BAD_VIDEO_ID"
        )
    return value


def username(value: str, field: str = "username") -> str:
    if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
        raise InvalidInput(
            field, "a username is 1 to 150 letters, digits or . @ + - _", "BAD_USERNAME"
        )
    return value


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


def unit_interval(value: float, field: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(field, f"must be between 0 and 1, got {value!r}", "OUT_OF_RANGE")
    return float(value)
