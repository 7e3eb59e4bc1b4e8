"""Read a Tournesol public dataset (a directory or a zip) into validated rows.

No database here: this module turns CSV text into :class:`Dataset`, and every row
it cannot use into a :class:`BadRow` with its file, line number and reason. The
importer decides what to do with bad rows (skip, or abort under ``--strict``).

Format (DESIGN.md §2): ``comparisons.csv`` with columns public_username, video_a,
video_b, criteria, score, optional score_max (default 10), week_date, and possibly
a leading unnamed index column (as pandas writes it); ``users.csv``
(public_username, trust_score); ``vouchers.csv`` (by_username, to_username, value).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from app.db import validation
from app.db.validation import DEFAULT_SCORE_MAX, InvalidInput

COMPARISON_COLUMNS = ("public_username", "video_a", "video_b", "criteria", "score")
USER_COLUMNS = ("public_username", "trust_score")
VOUCHER_COLUMNS = ("by_username", "to_username")


class DatasetError(Exception):
    """The dataset as a whole cannot be read (missing file, wrong columns)."""


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class DatasetComparison:
    """One contributor's comparison of a pair, all criteria, oriented as first seen."""

    username: str
    video_a: str
    video_b: str
    scores: dict[str, tuple[int, int]]  # criterion -> (score, score_max), sign as (a, b)
    week_date: date | None


@dataclass
class Dataset:
    comparisons: list[DatasetComparison] = field(default_factory=list)
    trust: dict[str, float] = field(default_factory=dict)  # users.csv
    vouches: list[tuple[str, str]] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    score_rows: int = 0

    @property
    def usernames(self) -> set[str]:
        vouchers = {name for pair in self.vouches for name in pair}
        return set(self.trust) | {c.username for c in self.comparisons} | vouchers

    @property
    def youtube_ids(self) -> set[str]:
        return {v for c in self.comparisons for v in (c.video_a, c.video_b)}


class _Source:
    """Files of a dataset directory or zip (possibly nested one folder deep)."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            self._zip = None
            names = {p.name: p for p in path.iterdir() if p.is_file()}
            self._names: dict[str, str | Path] = dict(names)
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self._names = {}
            for name in self._zip.namelist():
                base = PurePosixPath(name).name
                if base.endswith(".csv") and base not in self._names:
                    self._names[base] = name
        elif path.exists():
            raise DatasetError(f"{path} is neither a directory nor a zip archive")
        else:
            raise DatasetError(f"{path} does not exist")

    def open(self, name: str) -> io.TextIOBase | None:
        entry = self._names.get(name)
        if entry is None:
            return None
        if self._zip is None:
            return open(entry, encoding="utf-8", newline="")
        return io.TextIOWrapper(self._zip.open(str(entry)), encoding="utf-8", newline="")


def _rows(
    stream: io.TextIOBase, name: str, required: tuple[str, ...], dataset: Dataset
) -> Iterator[tuple[int, dict]]:
    """The well-formed rows with their line numbers; malformed ones go to bad_rows."""
    reader = csv.DictReader(stream, restkey="__extra__")
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(f"{name}: missing column(s) {', '.join(missing)}")
    for row in reader:
        line = reader.line_num
        if "__extra__" in row:
            fields = len(header) + len(row["__extra__"])
            dataset.bad_rows.append(BadRow(name, line, f"{fields} fields, expected {len(header)}"))
        elif any(v is None for v in row.values()):
            present = sum(v is not None for v in row.values())
            reason = f"truncated line: {present} of {len(header)} fields"
            dataset.bad_rows.append(BadRow(name, line, reason))
        else:
            yield line, row


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(what, f"{what} {text!r} is not an integer") from None


def read_dataset(path: str | Path, progress: bool = False) -> Dataset:
    source = _Source(Path(path))
    dataset = Dataset()
    stream = source.open("comparisons.csv")
    if stream is None:
        raise DatasetError(f"{path}: no comparisons.csv")
    with stream:
        _read_comparisons(stream, dataset, progress)
    users = source.open("users.csv")
    if users is not None:
        with users:
            _read_users(users, dataset)
    vouchers = source.open("vouchers.csv")
    if vouchers is not None:
        with vouchers:
            _read_vouchers(vouchers, dataset)
    return dataset


def _read_comparisons(stream: io.TextIOBase, dataset: Dataset, progress: bool) -> None:
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread left running in a server process

    name = "comparisons.csv"
    by_pair: dict[tuple[str, str, str], DatasetComparison] = {}
    seen: dict[tuple[str, str, str, str], int] = {}
    rows = _rows(stream, name, COMPARISON_COLUMNS, dataset)
    for line, row in tqdm(rows, desc="reading comparisons", unit=" rows", disable=not progress):
        try:
            user = validation.username(row["public_username"], "public_username")
            a = validation.youtube_id(row["video_a"].strip(), "video_a")
            b = validation.youtube_id(row["video_b"].strip(), "video_b")
            validation.distinct_videos(a, b, "video_b")
            crit = validation.criterion(row["criteria"].strip(), "criteria")
            score_max_text = (row.get("score_max") or "").strip()
            score_max = _int(score_max_text, "score_max") if score_max_text else DEFAULT_SCORE_MAX
            score, score_max = validation.score(_int(row["score"].strip(), "score"), score_max)
            week = _date((row.get("week_date") or "").strip())
        except InvalidInput as exc:
            dataset.bad_rows.append(BadRow(name, line, exc.message))
            continue
        lo, hi = sorted((a, b))
        key = (user, lo, hi, crit)
        if key in seen:
            dataset.bad_rows.append(
                BadRow(name, line, f"duplicate of line {seen[key]} ({user}, {lo}/{hi}, {crit})")
            )
            continue
        seen[key] = line
        comparison = by_pair.get((user, lo, hi))
        if comparison is None:
            comparison = by_pair[(user, lo, hi)] = DatasetComparison(user, a, b, {}, week)
            dataset.comparisons.append(comparison)
        if comparison.video_a != a:
            score = -score
        comparison.scores[crit] = (score, score_max)
        if week and (comparison.week_date is None or week < comparison.week_date):
            comparison.week_date = week
        dataset.score_rows += 1


def _date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("week_date", f"week_date {text!r} is not a date (YYYY-MM-DD)") from None


def _read_users(stream: io.TextIOBase, dataset: Dataset) -> None:
    name = "users.csv"
    for line, row in _rows(stream, name, USER_COLUMNS, dataset):
        try:
            user = validation.username(row["public_username"], "public_username")
            text = row["trust_score"].strip()
            trust = 0.0 if text == "" else float(text)
            validation.unit_interval(trust, "trust_score")
        except ValueError as exc:  # InvalidInput is a ValueError, as is float("x")
            reason = exc.message if isinstance(exc, InvalidInput) else "trust_score is not a number"
            dataset.bad_rows.append(BadRow(name, line, reason))
            continue
        dataset.trust[user] = trust


def _read_vouchers(stream: io.TextIOBase, dataset: Dataset) -> None:
    name = "vouchers.csv"
    for line, row in _rows(stream, name, VOUCHER_COLUMNS, dataset):
        try:
            voucher = validation.username(row["by_username"], "by_username")
            vouchee = validation.username(row["to_username"], "to_username")
            value = float((row.get("value") or "1").strip())
        except ValueError as exc:  # InvalidInput is a ValueError, as is float("x")
            reason = exc.message if isinstance(exc, InvalidInput) else "value is not a number"
            dataset.bad_rows.append(BadRow(name, line, reason))
            continue
        if voucher == vouchee:
            dataset.bad_rows.append(BadRow(name, line, "a user cannot vouch for themselves"))
        elif value > 0:
            dataset.vouches.append((voucher, vouchee))
