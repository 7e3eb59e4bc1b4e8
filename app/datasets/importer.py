"""Write a :class:`~app.datasets.reader.Dataset` into the database.

One transaction for the whole import, with the events of every change in it, so an
import is all-or-nothing and the learner can replay it. Importing the same data
twice changes nothing: existing users, videos, comparisons and vouches are matched
and only differences are written (a changed score becomes a ``comparison_updated``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from tortoise.transactions import in_transaction
from tqdm import tqdm

from app.datasets.reader import BadRow, Dataset
from app.db import usernames
from app.db.models import Comparison, ComparisonScore, Event, EventKind, User, Video, Vouch
from app.db.writes import canonical, comparison_payload, lock_event_log

BATCH = 2000


class ImportAborted(Exception):
    """``--strict`` import with bad rows: nothing was written."""

    def __init__(self, bad_rows: list[BadRow]):
        self.bad_rows = bad_rows
        super().__init__(f"{len(bad_rows)} bad row(s); nothing imported")


@dataclass
class ImportReport:
    users_created: int = 0
    users_updated: int = 0
    videos_created: int = 0
    comparisons_created: int = 0
    comparisons_updated: int = 0
    comparisons_unchanged: int = 0
    score_rows_written: int = 0
    vouches_created: int = 0
    events: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    # (new name, the existing or earlier name it looks like): both imported
    lookalikes: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"users: {self.users_created} new, {self.users_updated} updated; "
            f"videos: {self.videos_created} new; comparisons: {self.comparisons_created} new, "
            f"{self.comparisons_updated} updated, {self.comparisons_unchanged} unchanged "
            f"({self.score_rows_written} score rows written); vouches: {self.vouches_created} "
            f"new (already counted in the imported trust); events: {self.events}; "
            f"bad rows skipped: {len(self.bad_rows)}" + self._lookalikes()
        )

    def _lookalikes(self) -> str:
        if not self.lookalikes:
            return ""
        shown = ", ".join(f"{new!r} ~ {old!r}" for new, old in self.lookalikes[:10])
        more = f" and {len(self.lookalikes) - 10} more" if len(self.lookalikes) > 10 else ""
        return (
            f"; look-alike usernames imported as distinct accounts: {shown}{more} "
            "(new registrations of such names are refused)"
        )


def _week_start(week: date | None, fallback: datetime) -> datetime:
    return datetime.combine(week, time(), tzinfo=UTC) if week else fallback


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def import_dataset(
    dataset: Dataset, *, strict: bool = False, progress: bool = False
) -> ImportReport:
    if strict and dataset.bad_rows:
        raise ImportAborted(dataset.bad_rows)
    report = ImportReport(bad_rows=list(dataset.bad_rows))
    now = datetime.now(UTC)
    bar = tqdm(
        total=len(dataset.comparisons),
        desc="importing comparisons",
        unit=" cmp",
        disable=not progress,
    )
    async with in_transaction() as conn:
        await lock_event_log(conn)
        events: list[Event] = []
        users = await _import_users(dataset, report, events, conn)
        videos = await _import_videos(dataset, report, conn)

        existing: dict[tuple[int, int, int], tuple[int, dict]] = {}
        user_ids = list(users.values())
        for chunk in _batches(user_ids, 500):
            rows = (
                await ComparisonScore.filter(comparison__user_id__in=chunk)
                .using_db(conn)
                .values_list(
                    "comparison_id",
                    "comparison__user_id",
                    "comparison__video_a_id",
                    "comparison__video_b_id",
                    "criterion",
                    "score",
                    "score_max",
                )
            )
            for cid, uid, a, b, crit, score, score_max in rows:
                existing.setdefault((uid, a, b), (cid, {}))[1][crit] = (score, score_max)

        new: list[tuple[int, int, int, dict, datetime]] = []
        updated: list[tuple[int, int, int, int, dict]] = []
        for comparison in dataset.comparisons:
            uid = users[comparison.username]
            a, b, scores = canonical(
                videos[comparison.video_a], videos[comparison.video_b], comparison.scores
            )
            found = existing.get((uid, a, b))
            if found is None:
                new.append((uid, a, b, scores, _week_start(comparison.week_date, now)))
            elif found[1] != scores:
                updated.append((found[0], uid, a, b, scores))
            else:
                report.comparisons_unchanged += 1
                bar.update()

        for chunk in _batches(new):
            await Comparison.bulk_create(
                [
                    Comparison(user_id=u, video_a_id=a, video_b_id=b, created_at=t, updated_at=t)
                    for u, a, b, _, t in chunk
                ],
                using_db=conn,
            )
        ids = {}
        if new:
            for chunk in _batches(user_ids, 500):
                for cid, u, a, b in (
                    await Comparison.filter(user_id__in=chunk)
                    .using_db(conn)
                    .values_list("id", "user_id", "video_a_id", "video_b_id")
                ):
                    ids[(u, a, b)] = cid
        if updated:
            for chunk in _batches([cid for cid, *_ in updated], 500):
                await ComparisonScore.filter(comparison_id__in=chunk).using_db(conn).delete()
                await Comparison.filter(id__in=chunk).using_db(conn).update(updated_at=now)

        # Both lists become (comparison id, pair, scores, kind) for one writing loop.
        changes = [(ids[(u, a, b)], u, a, b, scores, EventKind.COMPARISON_CREATED)
                   for u, a, b, scores, _ in new]  # fmt: skip
        changes += [(*row, EventKind.COMPARISON_UPDATED) for row in updated]
        scores_to_write: list[ComparisonScore] = []
        for cid, u, a, b, scores, kind in changes:
            scores_to_write += [
                ComparisonScore(comparison_id=cid, criterion=c, score=s, score_max=m)
                for c, (s, m) in scores.items()
            ]
            events.append(Event(kind=kind, payload=comparison_payload(u, a, b, scores)))
        report.comparisons_created, report.comparisons_updated = len(new), len(updated)
        for chunk in _batches(scores_to_write):
            await ComparisonScore.bulk_create(chunk, using_db=conn)
            report.score_rows_written += len(chunk)
            bar.update(len(chunk) * (len(new) + len(updated)) // max(1, len(scores_to_write)))

        await _import_vouches(dataset, users, report, events, conn)
        for chunk in _batches(events):
            await Event.bulk_create(chunk, using_db=conn)
        report.events = len(events)
    bar.n = len(dataset.comparisons)  # its total
    bar.close()
    return report


async def _import_users(
    dataset: Dataset, report: ImportReport, events: list, conn
) -> dict[str, int]:
    names = sorted(dataset.usernames)
    found = {u.username: u for u in await User.filter(username__in=names).using_db(conn)}
    missing = [n for n in names if n not in found]
    keys = await _username_keys(missing, report, conn)
    await User.bulk_create(
        # The dataset's trust_score is a computed trust, vouches included: it becomes
        # pretrust (the input of trust propagation) and trust (shown until the learner
        # recomputes it, to the same value: the dataset's vouches are not propagated
        # again, see _import_vouches). Names only vouchers.csv knows get 0.
        [
            User(
                username=n,
                username_key=keys[n],
                pretrust=dataset.trust.get(n, 0.0),
                trust=dataset.trust.get(n, 0.0),
            )
            for n in missing
        ],
        using_db=conn,
    )
    report.users_created = len(missing)
    ids = dict(await User.filter(username__in=names).using_db(conn).values_list("username", "id"))
    for name in missing:
        if dataset.trust.get(name, 0.0) > 0:
            events.append(
                Event(
                    kind=EventKind.PRETRUST_CHANGED,
                    payload={"user": ids[name], "pretrust": dataset.trust[name]},
                )
            )
    for name, user in found.items():
        if name in dataset.trust and user.pretrust != dataset.trust[name]:
            await User.filter(id=user.id).using_db(conn).update(pretrust=dataset.trust[name])
            events.append(
                Event(
                    kind=EventKind.PRETRUST_CHANGED,
                    payload={"user": user.id, "pretrust": dataset.trust[name]},
                )
            )
            report.users_updated += 1
    return ids


async def _username_keys(names: list[str], report: ImportReport, conn) -> dict[str, str]:
    """Uniqueness keys (app/db/usernames.py) for new usernames.

    A public dataset can hold two contributors whose names look alike, or one who
    looks like an existing account. Both are real people with real comparisons, and
    an imported account has no password (it cannot sign in), so both are imported:
    the later name gets its key with a suffix no name produces (a tab and a hash of
    the name), and the report lists the pair. Registering another such name later
    is refused, as for any look-alike.
    """
    keys = {n: usernames.key(n) for n in names}
    holders: dict[str, str] = {}
    wanted = sorted(set(keys.values()))
    for chunk in _batches(wanted, 500):
        for key, name in (
            await User.filter(username_key__in=chunk)
            .using_db(conn)
            .values_list("username_key", "username")
        ):
            holders[key] = name
    for name in names:
        key = keys[name]
        if key in holders:
            report.lookalikes.append((name, holders[key]))
            digest = hashlib.sha256(name.encode()).hexdigest()[:16]
            keys[name] = f"{key}\t{digest}"
        else:
            holders[key] = name
    return keys


async def _import_videos(dataset: Dataset, report: ImportReport, conn) -> dict[str, int]:
    wanted = sorted(dataset.youtube_ids)
    ids: dict[str, int] = {}
    for chunk in _batches(wanted, 500):
        ids.update(
            await Video.filter(youtube_id__in=chunk).using_db(conn).values_list("youtube_id", "id")
        )
    missing = [v for v in wanted if v not in ids]
    for chunk in _batches(missing):
        await Video.bulk_create([Video(youtube_id=v) for v in chunk], using_db=conn)
    for chunk in _batches(missing, 500):
        ids.update(
            await Video.filter(youtube_id__in=chunk).using_db(conn).values_list("youtube_id", "id")
        )
    report.videos_created = len(missing)
    return ids


async def _import_vouches(
    dataset: Dataset, users: dict[str, int], report: ImportReport, events: list, conn
) -> None:
    """Store the dataset's vouches as ``imported``: no event, never propagated.

    A public dataset's ``trust_score`` is the result of trust propagation, vouches
    included, and it becomes the vouchee's pretrust (:func:`_import_users`); letting
    the learner propagate these vouches again would count them twice. They are kept
    (``vouchesGiven``/``vouchesReceived``, and ``vouchers.csv`` on export). A vouch
    made later on this server is an ordinary one and propagates.
    """
    existing = set(await Vouch.all().using_db(conn).values_list("voucher_id", "vouchee_id"))
    new = []
    for voucher, vouchee in dataset.vouches:
        pair = (users[voucher], users[vouchee])
        if pair in existing:
            continue
        existing.add(pair)
        new.append(Vouch(voucher_id=pair[0], vouchee_id=pair[1], imported=True))
    for chunk in _batches(new):
        await Vouch.bulk_create(chunk, using_db=conn)
    report.vouches_created = len(new)
