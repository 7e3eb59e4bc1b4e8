"""The learner at run time: one per process, owning all TensorFlow work.

Threads. Every call into the live :class:`Learner` runs on one worker thread, so
the learner needs no locks and the event loop never waits on TensorFlow. A
background refit runs on a second thread on a *copy* of the state; when it
finishes, the worker replays the events that arrived meanwhile onto the fitted
copy and swaps it in, all in one worker call, so readers see either the old or the
new learner, never a mix.

Reads. After each applied event the worker publishes immutable :class:`ScoreView`
objects for the videos that changed into a dict the event loop reads without a
hop (``video_scores``). Rankings read a per-criterion table that is rebuilt on
the worker at most once per score ``version``.

The event log. ``apply(event)`` first applies, in id order, every event after
the watermark up to ``event`` (reading the ones it was not given from the
database), so events that commit in id order (see ``app.db.writes.lock_event_log``)
are applied exactly in that order, whoever calls ``apply`` first. Events written by
another process (an import, another server) are picked up by ``catch_up()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.criteria import CRITERIA, CRITERION_INDEX, CRITERION_NAMES, MAIN_CRITERION
from app.db.models import Event, EventKind
from app.learner import dbio
from app.learner.hparams import HParams
from app.learner.scale import squash
from app.metrics import EVENTS_APPLIED, LEARNER_UPDATE_SECONDS, REFIT_SECONDS

log = logging.getLogger("sunrank.learner")
T = TypeVar("T")
MAIN = CRITERION_INDEX[MAIN_CRITERION]


def display(raw: float, unc: float) -> tuple[float, float]:
    """Raw score ± uncertainty → display score and half the squashed width."""
    lo, hi = squash(raw - unc), squash(raw + unc)
    return float(squash(raw)), float((hi - lo) / 2)


@dataclass(frozen=True, slots=True)
class ScoreView:
    """A video's global score on one criterion, ready for the API."""

    criterion: str
    score: float  # display scale, [-100, 100]
    uncertainty: float  # display scale: half the squashed width of raw ± uncertainty
    raw: float
    raw_uncertainty: float
    n_contributors: int
    n_comparisons: int

    @classmethod
    def of(cls, criterion: int, raw: float, unc: float, n_contrib: int, n_comp: int) -> ScoreView:
        score, uncertainty = display(raw, unc)
        name = CRITERION_NAMES[criterion]
        return cls(name, score, uncertainty, float(raw), float(unc), int(n_contrib), int(n_comp))


@dataclass(frozen=True, slots=True)
class ContributorScoreView:
    video_id: int
    criterion: str
    score: float
    uncertainty: float
    raw: float


@dataclass(frozen=True)
class Update:
    """What one ``apply`` changed: the new scores of the videos it touched."""

    version: int
    user_id: int | None
    videos: dict[int, dict[str, ScoreView]] = field(default_factory=dict)
    event_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class RankingTable:
    """Display scores of every rated video, for one score version.

    ``scores[i, c]`` is NaN where video ``video_ids[i]`` has no score on criterion c.
    """

    version: int
    video_ids: np.ndarray
    scores: np.ndarray  # (n_videos, n_criteria) display scores
    n_contributors: np.ndarray  # (n_videos, n_criteria)
    main_sum_trust: np.ndarray  # (n_videos,) Σ trust of the main criterion's raters

    def safe(self) -> np.ndarray:
        """Tournesol's rule: main score > 20 and raters' trust summing to ≥ 1.5."""
        main = self.scores[:, MAIN]
        return (np.nan_to_num(main, nan=-1.0) > 20.0) & (self.main_sum_trust >= 1.5)


class RefitCancelled(Exception):
    pass


class LearnerService:
    def __init__(self, settings: Settings, hparams: HParams | None = None):
        self.settings = settings
        self.hparams = hparams or HParams()
        self.learner = None  # app.learner.model.Learner, touched only on the worker
        self.watermark = 0  # id of the last event applied
        self.version = 0  # increases with every change of the published scores
        self.ready = False
        self.last_fit: Any = None  # FitReport of the last full fit
        self._views: dict[int, dict[str, ScoreView]] = {}
        self._sum_trust: dict[int, float] = {}  # video id → Σ trust on the main criterion
        self._ranking: RankingTable | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="learner")
        self._refitter = ThreadPoolExecutor(1, thread_name_prefix="learner-refit")
        self._apply_lock = asyncio.Lock()
        self._subscribers: set[asyncio.Queue[Update]] = set()
        self._dirty_videos: set[int] = set()
        self._dirty_users: set[int] = set()
        self._trust_written: dict[int, float] = {}
        self._refit_log: list[tuple[str, dict]] | None = None  # events since the refit snapshot
        self._refit_task: asyncio.Task | None = None
        self._events_since_refit = 0
        self._last_refit = time.monotonic()
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._stopping = threading.Event()
        self._background: asyncio.Task | None = None

    # ------------------------------------------------------------ plumbing
    async def _on_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    # ------------------------------------------------------------ lifecycle
    async def start(self, *, background: bool = True, progress: Callable | None = None) -> bool:
        """Restore the newest valid checkpoint (or fit from the database), catch up
        with the event log, publish the scores. Never fails on a bad checkpoint.

        Returns whether a checkpoint was restored (False: a full fit was made, with
        ``progress(iteration, objective, max_abs_gradient)`` called along the way).
        """
        from app.learner.checkpoint import CheckpointError
        from app.learner.model import Learner

        started = time.perf_counter()
        restored = None
        try:
            restored = await self._on_worker(
                Learner.restore_checkpoint, self.settings.checkpoint_dir, self.hparams
            )
        except CheckpointError as exc:
            log.warning("no usable checkpoint (%s): full fit from the database", exc)
        except Exception:  # a checkpoint must never stop the server
            log.exception("checkpoint restore failed: full fit from the database")
        if restored is not None:
            self.learner, self.watermark = restored
            log.info("restored checkpoint at event %d", self.watermark)
            await self._on_worker(self._publish_all)
            await self.catch_up()
        else:
            await self._fit_from_database(progress)
        self.ready = True
        log.info(
            "learner ready in %.1f s: event %d, %s", time.perf_counter() - started,
            self.watermark, self.learner.counts,
        )  # fmt: skip
        if background:
            self._background = asyncio.create_task(self._housekeeping(), name="learner-house")
        return restored is not None

    async def _fit_from_database(self, progress: Callable | None = None) -> None:
        from app.learner.model import Learner

        inputs = await dbio.load_inputs()

        def build() -> Any:
            learner = Learner(self.hparams)
            learner.load(inputs.comparisons, inputs.pretrust, inputs.vouches, inputs.private)
            self.last_fit = learner.fit(progress=progress)
            return learner

        learner = await asyncio.get_running_loop().run_in_executor(self._refitter, build)

        def install() -> None:
            self.learner, self.watermark = learner, inputs.watermark
            self._publish_all()

        await self._on_worker(install)
        log.info("full fit: %s", self.last_fit)
        await self.catch_up()
        await self.checkpoint()

    async def stop(self) -> None:
        """Cancel the refit, save a checkpoint, flush scores, release the threads."""
        self._stopping.set()
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        if self._refit_task is not None:
            with contextlib.suppress(asyncio.CancelledError, RefitCancelled):
                await self._refit_task
        if self.learner is not None and self.ready:
            await self.checkpoint()
        self.ready = False
        self._worker.shutdown(wait=True)
        self._refitter.shutdown(wait=True)
        for queue in self._subscribers:
            queue.put_nowait(None)  # type: ignore[arg-type]

    # ------------------------------------------------------------ events
    async def apply(self, event: Event | None = None) -> Update:
        """Apply the event log up to ``event`` (default: its end); see the module doc."""
        async with self._apply_lock:
            if event is not None and event.id <= self.watermark:
                return Update(self.version, None)
            if event is not None and event.id == self.watermark + 1:
                events = [event]
            else:
                events = await dbio.events_after(self.watermark, event.id if event else None)
            if not events:
                return Update(self.version, None)
            update = await self._on_worker(self._apply_events, events)
        self._broadcast(update)
        return update

    async def catch_up(self) -> Update:
        """Apply every event in the database after the watermark."""
        last = Update(self.version, None)
        while True:
            update = await self.apply()
            if not update.event_ids:
                return last
            last = update

    def _apply_events(self, events: list[Event]) -> Update:
        started = time.perf_counter()
        changed_items: set[tuple[int, int]] = set()
        user = None
        for event in events:
            payload = dict(event.payload)
            try:
                changed = _dispatch(self.learner, EventKind(event.kind), payload)
            except Exception:  # one bad event must not wedge the log
                log.exception("event %d (%s) could not be applied; skipped", event.id, event.kind)
                changed = None
            if changed is not None:
                changed_items |= changed.items
                user = changed.user
                if changed.user is not None:
                    self._dirty_users.add(changed.user)
            if self._refit_log is not None:
                self._refit_log.append((event.kind, payload))
            self.watermark = event.id
        self._events_since_refit += len(events)
        self._events_since_checkpoint += len(events)
        videos = {video for _, video in changed_items}
        views = self._publish(videos)
        elapsed = time.perf_counter() - started
        EVENTS_APPLIED.inc(len(events))
        LEARNER_UPDATE_SECONDS.observe(elapsed)
        log.info(
            "events applied",
            extra={"fields": {
                "first_event": events[0].id, "last_event": events[-1].id, "count": len(events),
                "kind": events[-1].kind, "videos": len(videos), "version": self.version,
                "duration_ms": round(elapsed * 1000, 2),
            }},
        )  # fmt: skip
        return Update(self.version, user, views, tuple(e.id for e in events))

    # ------------------------------------------------------------ publishing (worker)
    def _view_of(self, video_id: int) -> dict[str, ScoreView]:
        return {
            CRITERION_NAMES[c]: ScoreView.of(c, *values)
            for c, values in sorted(self.learner.video_score(video_id).items())
        }

    def _publish(self, videos: set[int]) -> dict[int, dict[str, ScoreView]]:
        out = {}
        for video in videos:
            out[video] = view = self._view_of(video)
            if view:
                self._views[video] = view
            else:
                self._views.pop(video, None)
            self._sum_trust[video] = self.learner.sum_trust(video, MAIN)
        self._dirty_videos |= videos
        self.version += 1
        return out

    def _publish_all(self, precomputed: tuple[dict, dict] | None = None) -> None:
        """Publish every video's scores (``precomputed``: ``_all_views`` of the
        learner, made off the worker)."""
        self._views, self._sum_trust = precomputed or _all_views(self.learner)
        self._dirty_videos |= set(self._views)
        self._dirty_users |= set(self.learner.user_ids())
        self.version += 1

    # ------------------------------------------------------------ reads
    def video_scores(self, video_id: int) -> dict[str, ScoreView]:
        """Current global scores of a video, by criterion (empty when unrated)."""
        return self._views.get(video_id, {})

    def sum_trust(self, video_id: int) -> float:
        return self._sum_trust.get(video_id, 0.0)

    def is_safe(self, video_id: int) -> bool:
        main = self._views.get(video_id, {}).get(MAIN_CRITERION)
        return main is not None and main.score > 20.0 and self.sum_trust(video_id) >= 1.5

    async def contributor_scores(self, user_id: int) -> list[ContributorScoreView]:
        rows = await self._on_worker(self.learner.contributor_scores, user_id)
        return [
            ContributorScoreView(vid, CRITERION_NAMES[c], *display(raw, unc), raw)
            for vid, c, raw, unc in rows
        ]

    async def trust(self, user_id: int) -> float:
        return await self._on_worker(self.learner.trust, user_id)

    async def ranking_table(self) -> RankingTable:
        table = self._ranking
        if table is not None and table.version == self.version:
            return table
        self._ranking = table = await self._on_worker(self._build_ranking)
        return table

    def _build_ranking(self) -> RankingTable:
        views, names = self._views, CRITERION_NAMES
        ids = np.fromiter(views.keys(), np.int64, len(views))
        scores = np.full((len(ids), len(names)), np.nan)
        n_contrib = np.zeros((len(ids), len(names)), np.int32)
        for i, vid in enumerate(ids.tolist()):
            for name, view in views[vid].items():
                c = CRITERION_INDEX[name]
                scores[i, c] = view.score
                n_contrib[i, c] = view.n_contributors
        trust = np.array([self._sum_trust.get(v, 0.0) for v in ids.tolist()])
        return RankingTable(self.version, ids, scores, n_contrib, trust)

    # ------------------------------------------------------------ subscriptions
    async def subscribe(self) -> AsyncIterator[Update]:
        """Every ``Update`` from now on, until the service stops."""
        queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        try:
            while (update := await queue.get()) is not None:
                yield update
        finally:
            self._subscribers.discard(queue)

    def _broadcast(self, update: Update) -> None:
        if not update.videos:
            return
        for queue in list(self._subscribers):
            if queue.full():  # a stalled subscriber loses its oldest update, not the server
                queue.get_nowait()
            queue.put_nowait(update)

    # ------------------------------------------------------------ refit
    async def refit(self, progress: Callable[[int, float, float], None] | None = None) -> Any:
        """Warm-started full fit on a snapshot, swapped in with the events since."""
        if self._refit_task is None or self._refit_task.done():
            self._refit_task = asyncio.create_task(self._refit(progress), name="learner-refit")
        return await asyncio.shield(self._refit_task)

    async def _refit(self, progress: Callable | None) -> Any:
        from app.learner.model import Learner

        def snapshot() -> dict:
            self._refit_log = []
            return self.learner.state()

        state = await self._on_worker(snapshot)
        self._events_since_refit = 0
        self._last_refit = time.monotonic()

        def fit() -> tuple[Any, Any]:
            def report(it: int, objective: float, grad: float) -> None:
                if self._stopping.is_set():
                    raise RefitCancelled()
                if progress is not None:
                    progress(it, objective, grad)

            fresh = Learner.from_state(self.hparams, state)
            report_ = fresh.fit(progress=report)
            # The views of every video, built here rather than on the worker, where
            # they would hold up online updates (~0.5 s per 35k videos).
            return fresh, report_, _all_views(fresh)

        try:
            fresh, report, views = await asyncio.get_running_loop().run_in_executor(
                self._refitter, fit
            )
        except BaseException:
            self._refit_log = None
            raise

        def swap() -> int:
            pending = self._refit_log or []
            self._refit_log = None
            fresh.adopt_solver(self.learner)  # no retrace on the next online update
            touched: set[int] = set()
            for kind, payload in pending:
                try:
                    changed = _dispatch(fresh, EventKind(kind), payload)
                except Exception:
                    log.exception("replay of a %s event onto the refit failed", kind)
                    continue
                touched |= {video for _, video in changed.items}
            self.learner = fresh
            self._publish_all(views)
            self._publish(touched)  # the videos the replayed events moved
            return len(pending)

        replayed = await self._on_worker(swap)
        self.last_fit = report
        REFIT_SECONDS.observe(report.seconds)
        log.info(
            "refit swapped in",
            extra={"fields": {
                "iterations": report.iterations, "grad_norm": f"{report.grad_norm:.2e}",
                "fit_seconds": round(report.seconds, 3), "replayed_events": replayed,
                "version": self.version,
            }},
        )  # fmt: skip
        self._broadcast(Update(self.version, None, dict(self._views)))
        return report

    # ------------------------------------------------------------ persistence
    async def checkpoint(self) -> None:
        """Save a checkpoint at the current watermark, then flush scores."""

        def save() -> int:
            self.learner.save_checkpoint(self.settings.checkpoint_dir, self.watermark)
            return self.watermark

        watermark = await self._on_worker(save)
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        log.info("checkpoint saved at event %d", watermark)
        await self.flush_scores()

    async def flush_scores(self) -> None:
        """Write the scores of the videos and users changed since the last flush."""
        rows = await self._on_worker(self._collect_rows)
        if not (rows.videos or rows.users or rows.trust):
            return
        try:
            await dbio.write_scores(rows)
        except Exception:
            self._dirty_videos |= set(rows.videos)
            self._dirty_users |= set(rows.users)
            raise
        self._trust_written.update(rows.trust)

    def _collect_rows(self) -> dbio.ScoreRows:
        videos, users = sorted(self._dirty_videos), sorted(self._dirty_users)
        self._dirty_videos, self._dirty_users = set(), set()
        video_rows = [
            (vid, CRITERION_INDEX[name], v.score, v.uncertainty, v.n_contributors, v.n_comparisons)
            for vid in videos
            for name, v in self._views.get(vid, {}).items()
        ]
        contributor_rows = []
        trust = {}
        for user in users:
            for vid, c, raw, unc in self.learner.contributor_scores(user):
                vr = self.learner.voting_right(user, vid, c)
                contributor_rows.append((user, vid, c, *display(raw, unc), vr))
            t = self.learner.trust(user)
            if not math.isclose(self._trust_written.get(user, -1.0), t):
                trust[user] = t
        return dbio.ScoreRows(videos, video_rows, users, contributor_rows, trust)

    # ------------------------------------------------------------ housekeeping
    async def _housekeeping(self) -> None:
        """Follow the log, and refit / checkpoint / flush when they are due."""
        s = self.settings
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.catch_up()
                now = time.monotonic()
                refit_due = self._events_since_refit >= s.refit_every_events or (
                    self._events_since_refit and now - self._last_refit >= s.refit_every_seconds
                )
                if refit_due and (self._refit_task is None or self._refit_task.done()):
                    self._refit_task = asyncio.create_task(self._refit(None))
                if self._events_since_checkpoint and (
                    now - self._last_checkpoint >= s.checkpoint_every_seconds
                ):
                    await self.checkpoint()
                elif self._dirty_videos or self._dirty_users:
                    await self.flush_scores()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("learner housekeeping failed; retrying in a second")


def _all_views(learner: Any) -> tuple[dict[int, dict[str, ScoreView]], dict[int, float]]:
    """Every rated video's score views, and its raters' trust sum on the main criterion."""
    views: dict[int, dict[str, ScoreView]] = {}
    for c in range(len(CRITERIA)):
        ids, raw, unc, n_contrib, n_comp = learner.video_scores(c)
        name = CRITERION_NAMES[c]
        for i, vid in enumerate(ids.tolist()):
            views.setdefault(vid, {})[name] = ScoreView.of(
                c, raw[i], unc[i], n_contrib[i], n_comp[i]
            )
    views = {v: dict(sorted(d.items())) for v, d in views.items()}
    return views, {v: learner.sum_trust(v, MAIN) for v in views}


def _dispatch(learner: Any, kind: EventKind, p: dict) -> Any:
    """Hand one event's payload to the learner; returns its ``Changed``."""
    if kind in (EventKind.COMPARISON_CREATED, EventKind.COMPARISON_UPDATED):
        scores = {CRITERION_INDEX[c]: (int(s), int(m)) for c, (s, m) in p["scores"].items()}
        return learner.upsert_comparison(p["user"], p["video_a"], p["video_b"], scores)
    if kind == EventKind.COMPARISON_DELETED:
        return learner.delete_comparison(p["user"], p["video_a"], p["video_b"])
    if kind == EventKind.PRETRUST_CHANGED:
        return learner.set_pretrust(p["user"], float(p["pretrust"]))
    if kind == EventKind.VOUCH_CHANGED:
        return learner.set_vouch(p["voucher"], p["vouchee"], bool(p["active"]))
    if kind == EventKind.VISIBILITY_CHANGED:
        return learner.set_visibility(p["user"], p["video"], bool(p["is_public"]))
    raise ValueError(f"unknown event kind {kind!r}")
