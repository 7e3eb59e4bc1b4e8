"""The learner at run time: one per process, owning all TensorFlow work.

Threads. Every call into the live :class:`Learner` runs on one worker thread, so
the learner needs no locks and the event loop never waits on TensorFlow. A
background refit fits a copy of the arrays on a second thread; when it finishes,
the worker installs the optimum, re-solves on top what the online updates solved
meanwhile, then publishes the scores that moved (see "The swap" below).

Online updates while a refit runs. Their stalls of 0.25–0.9 s under refits were
full (generation-2) garbage collections, not TensorFlow: each refit allocates
enough objects (score views, snapshots) to trigger one, and it scans the whole
heap, TensorFlow's Python objects included, holding the GIL for ~0.6 s on this
machine. The server freezes the heap once started (``gc.freeze()`` in
``app/main.py``); with it, full collections scan only what was allocated since
(25–85 ms), and ``bench/online_under_refit.py`` measured an online update's p99
under back-to-back refits at 0.9–1.3× its p99 alone (without: 1.5–3.4×, worst
update 0.8–1 s). What remains is the CPU the refit takes on a 2-core machine.
Anything that embeds this service in a long-lived process should freeze likewise.
A fit in a niced child process (no shared GIL, thread pool or CPU priority) was
tried: with the heap frozen it measured no better than this thread, for a second
TensorFlow runtime's memory, so the fit stays here.

The swap. A refit holds the worker while it swaps in: the install of the fitted
values, the replay (``adopt_ms``: re-solving the events applied during the fit,
each costing what its online update did) and the republishing of what moved
(``publish_ms``; ``swap_ms`` in all). The republishing is vectorised
(``_republish_items``: only views that changed, no Σ trust); per-video
``_view_of`` + ``sum_trust`` of the ~110 videos a replay touches took p50 6 / p90 83
/ p99 242 ms under ``bench/_live_gap.py --seconds 60``, now 0.5–1.7 / 5–8 / 24–27 ms.
The replay runs in slices of ``REPLAY_SLICE_S`` (one worker call each, ``hold_ms``
the longest), so an online update arriving meanwhile waits for one slice, not the
whole replay: at 1M rows a refit of 4–6 s replays ~100 events, which held the
worker 0.6–0.8 s in one piece and made a submission then take 575 ms. An event
applied between two slices is solved on the fitted values plus the part replayed so
far (its own data is all there: only values wait for their re-solve), and publishes
its videos as usual; the rest of the replay then goes on, and the swap publishes the
fit's views except for those videos (already newer) and whatever the replay moved.
Until then readers see the scores of before the swap. The order of the local solves
differs from "fit, then the whole replay, then the event" only for such events; the
next refit removes what that changes.

Reads. After each applied event the worker publishes immutable :class:`ScoreView`
objects for the videos that changed into a dict the event loop reads without a
hop (``video_scores``). Rankings read a per-criterion table that is rebuilt on
the worker at most once per score ``version``.

The event log. ``apply(event)`` first applies, in id order, every event after
the watermark up to ``event`` (reading the ones it was not given from the
database), so events that commit in id order (see ``app.db.writes.lock_event_log``)
are applied exactly in that order, whoever calls ``apply`` first. Events written by
another process (an import, another server) are picked up by ``catch_up()``.

Live = full fit. Online updates re-solve a bounded block around each event; what
they leave out drifts (on the demo data about 0.4 display points per event before
the wider blocks, 0.001 median after). So refits run back to back while events
arrive (``refit_every_events`` = 1 by default; a warm-started refit of the demo
data takes about 0.3 s off the worker): the live scores are always a full fit of
the log up to a recent snapshot plus the few events applied online since, and
``freshness()`` says how many (``/readyz`` shows it). After a restore the first
refit runs at once when the checkpoint holds online drift (``online_events``).
Refits work in place (``refit.py``: no second learner), rebuild only the score
views that moved, and mark for the score tables only what moved by more than
``FLUSH_EPS`` (all of it every ``FULL_FLUSH_EVERY_S``), so back-to-back refits do
not rewrite the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.criteria import CRITERIA, CRITERION_INDEX, CRITERION_NAMES, MAIN_CRITERION
from app.db.models import Event, EventKind
from app.engine import dbio
from app.learner import threads
from app.learner.hparams import HParams
from app.learner.scale import squash
from app.metrics import EVENTS_APPLIED, LEARNER_UPDATE_SECONDS, REFIT_SECONDS

log = logging.getLogger("sunrank.learner")
T = TypeVar("T")
MAIN = CRITERION_INDEX[MAIN_CRITERION]
_CRITERION_ORDER = {name: k for k, name in enumerate(CRITERION_NAMES)}
REFIT_POLL_S = 0.05  # how often the refit loop looks for new events
REFIT_REST = 1.0  # after a refit, wait this fraction of its duration before the next
# A refit's replay runs in slices of about this long on the worker, events arriving
# meanwhile applied in between (at 1M rows a whole replay held it 0.6-0.8 s).
REPLAY_SLICE_S = 0.02
VIEW_EPS = 1e-6  # raw ρ / uncertainty change below which a refit keeps a video's view
FLUSH_EPS = 1e-3  # raw θ change (≤ 0.1 display point) below which a refit leaves a row
FULL_FLUSH_EVERY_S = 3600.0  # ... and every so often it rewrites them all anyway
FOLLOW_POLL_S = 1.0  # catch up with the log at least this often (notifications wake it sooner)
ADOPT_POLL_S = 5.0  # a follower looks for a newer published state at least this often


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
    remote: bool = False  # applied while following the log (written elsewhere, maybe)


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
        threads.configure(settings.learner_threads)  # before TensorFlow starts (a no-op after)
        self.learner: Any = None  # app.learner.model.Learner, touched only on the worker
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
        self._refit_task: asyncio.Task | None = None
        self._events_since_refit = 0  # events since the last refit's snapshot
        self._last_refit = time.monotonic()  # when that snapshot was taken
        self._online_since_fit = 0  # events applied online on top of the live full fit
        self._fit_snapshot_at = time.monotonic()  # when the live full fit's data was read
        self._refits = 0
        self._last_full_flush = time.monotonic()
        self._refit_loop_task: asyncio.Task | None = None
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._stopping = threading.Event()
        self._background: asyncio.Task | None = None
        self._follow_task: asyncio.Task | None = None
        self._run_background = False
        # Several processes on PostgreSQL (app/engine/cluster.py): only the leader
        # refits, flushes score tables and publishes fitted states; the others adopt
        # them. A lone process (SQLite, or no cluster) always leads.
        self.clustered = False
        self.leads = True
        self._wake = asyncio.Event()
        self._checkpoint_hint = False
        self._adopted: dbio.Published | None = None  # newest published state installed
        # videos published by events applied during a refit's replay (None: none runs)
        self._published_meanwhile: set[int] | None = None
        self._last_adopt_check = 0.0
        self._published_refits = 0
        self._last_publish = 0.0

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
            if self.clustered:  # no shared filesystem: the newest state in the database
                restored = await self._restore_published()
            if restored is None:
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
            await self._on_worker(self._publish_all, False)
            # A checkpoint holding online drift (events applied since its last fit;
            # unknown in an older one) gets its refit at once; one that is a full fit
            # needs none until events come (at 1M rows that refit took 0.6-4.7 s of
            # CPU beside the first requests, for nothing when the state was a fit).
            drift = self.learner.online_events
            self._online_since_fit = self._events_since_refit = 1 if drift is None else drift
            await self.catch_up()
        else:
            await self._fit_from_database(progress)
        # Trace the online solver now, so the first event costs what the hundredth does.
        await self._on_worker(self.learner.warm_up)
        self.ready = True
        log.info(
            "learner ready in %.1f s: event %d, %s", time.perf_counter() - started,
            self.watermark, self.learner.counts,
        )  # fmt: skip
        if background:
            self._run_background = True
            self._background = asyncio.create_task(self._housekeeping(), name="learner-house")
            self._follow_task = asyncio.create_task(self._follow(), name="learner-follow")
            if self.leads:
                self._refit_loop_task = asyncio.create_task(
                    self._refit_loop(), name="learner-refits"
                )
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
        for task in (self._background, self._follow_task, self._refit_loop_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RefitCancelled):
                    await task
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
            update = await self._on_worker(self._apply_events, events, event is None)
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

    def _apply_events(self, events: list[Event], remote: bool = False) -> Update:
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
            self.watermark = event.id
        self._events_since_refit += len(events)
        self._online_since_fit += len(events)
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
        return Update(self.version, user, views, tuple(e.id for e in events), remote)

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
        meanwhile = self._published_meanwhile  # (read once: the swap may clear it)
        if meanwhile is not None:  # during a refit's replay
            meanwhile |= videos
        self.version += 1
        return out

    def _republish_items(self, items: np.ndarray) -> dict[int, dict[str, ScoreView]]:
        """After a refit's replay: new views of the videos whose raw score,
        uncertainty or counts on one of ``items`` (learner item indices) differ from
        the published ones (by more than ``VIEW_EPS`` for the floats).

        The swap runs this on the worker, so it is vectorised like ``_moved_views``
        (per-video ``_view_of`` plus ``sum_trust`` of the ~110 videos a replay
        touches held online updates up). Σ trust is left as it is: neither a fit
        nor its replay changes trust (the online updates that did published it).
        """
        lr = self.learner
        items = np.asarray(items, np.int64)
        it = lr.items
        vid_arr = lr.videos.id[it.video[items]]
        crit_arr = it.crit[items]
        raw, unc = it.rho[items], 1.0 / np.sqrt(it.prec[items])
        nc, nm = it.ncontrib[items], it.ncomp[items]
        views = self._views
        empty: dict[str, ScoreView] = {}
        vids, crits = vid_arr.tolist(), crit_arr.tolist()
        pub = _published(views, vids, crits)
        same = _same(pub, raw, unc) & (nc == pub[:, 2]) & (nm == pub[:, 3])
        moved = np.flatnonzero(_moved(pub, same, nc > 0))
        if not len(moved):
            return {}
        out: dict[int, dict[str, ScoreView]] = {}
        for k, view_of_item in zip(
            moved.tolist(),
            _score_views(crit_arr[moved], raw[moved], unc[moved], nc[moved], nm[moved]),
            strict=True,
        ):
            video, name = vids[k], CRITERION_NAMES[crits[k]]
            view = out.get(video)
            if view is None:
                out[video] = view = dict(views.get(video, empty))
            if view_of_item.n_contributors > 0:
                view[name] = view_of_item
            else:
                view.pop(name, None)
        for video, view in out.items():
            out[video] = view = _in_criterion_order(view)
            if view:
                views[video] = view
            else:
                views.pop(video, None)
        self._dirty_videos.update(out)
        return out

    def _publish_all(self, flush: bool = True) -> None:
        """Publish every video's scores; ``flush``: and rewrite all score rows (not
        after a restore: the checkpoint's scores were flushed when it was written)."""
        self._views, self._sum_trust = _all_views(self.learner)
        if flush:
            self._dirty_videos |= set(self._views)
            self._dirty_users |= set(self.learner.user_ids())
        self.version += 1

    def freshness(self) -> dict[str, Any]:
        """How far the live scores may be from a full fit of the log.

        ``events_since_refit``: events applied online on top of the live full fit
        (0: the live scores are a full fit); ``refit_age_seconds``: age of the data
        that fit read; ``refit_running``: whether the next one is under way.
        """
        return {
            "events_since_refit": self._online_since_fit,
            "refit_age_seconds": round(time.monotonic() - self._fit_snapshot_at, 3),
            "refit_running": self._refit_task is not None and not self._refit_task.done(),
            "refits": self._refits,
        }

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
        """One background refit, in place (``refit.py``): snapshot on the worker, fit
        and score views on the refit thread, install on the worker."""
        from app.learner import refit

        target = self.learner  # an adopted state may replace it meanwhile (followers)

        def take() -> tuple[refit.Snapshot, bool]:
            return refit.snapshot(self.learner), self.learner.solver_needs_room()

        snap, grow = await self._on_worker(take)
        snapshot_at = self._last_refit = time.monotonic()
        self._events_since_refit = 0
        full_flush = snapshot_at - self._last_full_flush >= FULL_FLUSH_EVERY_S
        published_views = self._views

        def fit() -> tuple[refit.Result, dict, set[int], Any]:
            def report(it: int, objective: float, grad: float) -> None:
                if self._stopping.is_set():
                    raise RefitCancelled()
                if progress is not None:
                    progress(it, objective, grad)

            res = refit.fit(self.hparams, snap, report)
            # The views of the videos that moved, built here rather than on the
            # worker, where they would hold up online updates (~0.5 s per 35k videos).
            views = _moved_views(published_views, snap, res)
            moved_slots = np.flatnonzero(np.abs(res.theta - snap.theta) > FLUSH_EPS)
            users = set(snap.slot_user_id[moved_slots].tolist())
            solver = None
            if grow:  # the online solver is nearly full: a bigger one, traced here
                from app.learner.online import OnlineSolver, capacity_for

                solver = OnlineSolver(
                    capacity_for(2 * len(snap.theta)), capacity_for(2 * len(snap.rho)),
                    self.hparams.online_steps,
                )  # fmt: skip
                solver.warm_up()
            return res, views, users, solver

        try:
            res, views, users, solver = await asyncio.get_running_loop().run_in_executor(
                self._refitter, fit
            )
        except BaseException:
            with contextlib.suppress(RuntimeError):  # the worker may be gone (stop)
                await self._on_worker(refit.abandon, self.learner)
            raise

        # The swap, on the worker: install the fit, replay what online updates solved
        # since the snapshot in slices of REPLAY_SLICE_S (events arriving meanwhile
        # are applied between two slices), then publish. Timed: how long it held the
        # worker in all (swap_ms) and at most at once (hold_ms), and its parts.
        times = {"swap": 0.0, "hold": 0.0, "adopt": 0.0, "publish": 0.0, "slices": 0}

        def timed(step: Callable[[], T], part: str) -> Callable[[], T]:
            def run() -> T:
                t = time.perf_counter()
                try:
                    return step()
                finally:
                    took = time.perf_counter() - t
                    times["swap"] += took
                    times[part] += took
                    times["hold"] = max(times["hold"], took)
                    times["slices"] += 1

            return run

        def begin() -> tuple[np.ndarray, list] | None:
            if self.learner is not target:  # replaced by an adopted state: that one wins
                return None
            if solver is not None:
                self.learner._solver = solver
            self._published_meanwhile = set()
            return refit.install(self.learner, snap, res)

        def replay(log: list) -> tuple[np.ndarray, list]:
            if self.learner is not target:
                return np.zeros(0, np.int64), []
            return refit.replay(self.learner, log, REPLAY_SLICE_S)

        def finish(touched: np.ndarray) -> tuple[int, dict[int, dict[str, ScoreView]]]:
            meanwhile, self._published_meanwhile = self._published_meanwhile or set(), None
            if self.learner is not target:
                return self._online_since_fit, {}
            for video, view in views.items():
                if video in meanwhile:  # published since from the live state: newer
                    continue
                if view:
                    self._views[video] = view
                else:
                    self._views.pop(video, None)
            self._dirty_videos |= set(views)
            self._dirty_users |= users
            if full_flush:
                self._dirty_videos |= set(self._views)
                self._dirty_users |= set(self.learner.user_ids())
            self._online_since_fit = self._events_since_refit
            out = {v: self._views.get(v, {}) for v in views if v not in meanwhile}
            out.update(self._republish_items(touched))
            if out:
                self.version += 1
            return self._online_since_fit, out

        try:
            begun = await self._on_worker(timed(begin, "adopt"))
            touched = np.zeros(0, np.int64)
            if begun is not None:
                touched, pending = begun
                while pending:
                    items, pending = await self._on_worker(
                        timed(functools.partial(replay, pending), "adopt")
                    )
                    touched = np.union1d(touched, items)
            since, published = await self._on_worker(
                timed(functools.partial(finish, touched), "publish")
            )
        finally:
            self._published_meanwhile = None
        report = res.report
        self._refits += 1
        self._fit_snapshot_at = snapshot_at
        if full_flush:
            self._last_full_flush = snapshot_at
        self.last_fit = report
        REFIT_SECONDS.observe(report.seconds)
        log.info(
            "refit swapped in",
            extra={"fields": {
                "iterations": report.iterations, "grad_norm": f"{report.grad_norm:.2e}",
                "fit_seconds": round(report.seconds, 3), "events_since_snapshot": since,
                "videos_moved": len(views), "version": self.version,
                "swap_ms": round(times["swap"] * 1000, 1),
                "hold_ms": round(times["hold"] * 1000, 1), "slices": times["slices"],
                "adopt_ms": round(times["adopt"] * 1000, 1),
                "publish_ms": round(times["publish"] * 1000, 1),
            }},
        )  # fmt: skip
        self._broadcast(Update(self.version, None, published))
        return report

    async def _refit_loop(self) -> None:
        """Refit whenever events arrived since the last refit's snapshot (at least
        ``refit_every_events`` of them, or any after ``refit_every_seconds``), one
        refit at a time, back to back under a steady stream."""
        s = self.settings
        while True:
            await asyncio.sleep(REFIT_POLL_S)
            pending = self._events_since_refit
            if not pending or (
                pending < s.refit_every_events
                and time.monotonic() - self._last_refit < s.refit_every_seconds
            ):
                continue
            if self._refit_task is None or self._refit_task.done():
                self._refit_task = asyncio.create_task(self._refit(None), name="learner-refit")
            started = time.monotonic()
            try:
                await asyncio.shield(self._refit_task)
            except asyncio.CancelledError:
                raise
            except RefitCancelled:
                return
            except Exception:
                log.exception("background refit failed; retrying in a second")
                await asyncio.sleep(1.0)
            # rest as long as it took: refits use at most half the time (at 1M rows
            # back-to-back refits kept both cores busy and slowed every request)
            await asyncio.sleep(REFIT_REST * (time.monotonic() - started))

    # ------------------------------------------------------------ persistence
    async def checkpoint(self) -> None:
        """Save a checkpoint at the current watermark (and publish it when clustered),
        then flush scores. Only the leader does: a follower's state is the leader's
        plus events, and the score tables are the leader's to write."""
        if not self.leads:
            return
        if self.clustered:
            await self.publish()

        def save() -> int:
            self.learner.online_events = self._online_since_fit
            self.learner.save_checkpoint(self.settings.checkpoint_dir, self.watermark)
            return self.watermark

        watermark = await self._on_worker(save)
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        log.info("checkpoint saved at event %d", watermark)
        await self.flush_scores()

    async def flush_scores(self) -> None:
        """Write the scores of the videos and users changed since the last flush."""
        if not self.leads:
            return
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
        """Follow the log, and checkpoint / flush when they are due."""
        s = self.settings
        while True:
            await asyncio.sleep(1.0)
            try:
                now = time.monotonic()
                if not self.leads:
                    if self.clustered and (
                        self._checkpoint_hint or now - self._last_adopt_check >= ADOPT_POLL_S
                    ):
                        await self.adopt_newest()
                elif self._events_since_checkpoint and (
                    now - self._last_checkpoint >= s.checkpoint_every_seconds
                ):
                    await self.checkpoint()
                elif (
                    self.clustered
                    and self._refits > self._published_refits
                    and now - self._last_publish >= s.publish_every_seconds
                ):
                    await self.publish()
                    await self.flush_scores()
                elif self._dirty_videos or self._dirty_users:
                    await self.flush_scores()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("learner housekeeping failed; retrying in a second")

    async def _follow(self) -> None:
        """Apply events written anywhere as soon as a notification (or the poll) says so."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FOLLOW_POLL_S)
            self._wake.clear()
            try:
                await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the event log failed; retrying in a second")
                await asyncio.sleep(FOLLOW_POLL_S)

    # ------------------------------------------------------------ several processes
    def wake(self) -> None:
        """An event was committed somewhere (a PostgreSQL notification)."""
        self._wake.set()

    def checkpoint_published(self) -> None:
        """A fitted state was published (a notification): followers adopt it soon."""
        self._checkpoint_hint = True

    async def set_leader(self, leads: bool) -> None:
        """Gain or lose the lead (app/engine/cluster.py)."""
        self.leads = leads
        if leads:
            # Whatever the old leader did not flush: rewrite every row at the next
            # refit, which runs at once (this process's scores carry online drift).
            self._last_full_flush = -math.inf
            self._events_since_refit = max(1, self._events_since_refit)
            self._last_publish = 0.0
            if self._run_background and (
                self._refit_loop_task is None or self._refit_loop_task.done()
            ):
                self._refit_loop_task = asyncio.create_task(
                    self._refit_loop(), name="learner-refits"
                )
        elif self._refit_loop_task is not None:
            self._refit_loop_task.cancel()  # a refit under way still finishes and swaps in
            self._refit_loop_task = None

    def cluster_state(self) -> dict[str, Any]:
        adopted = self._adopted
        return {
            "role": "leader" if self.leads else "follower",
            "checkpoint": None
            if adopted is None
            else {"id": adopted.id, "watermark": adopted.watermark},
        }

    async def publish(self) -> None:
        """Publish the live state (the last refit plus the events since) into the
        database, for the other processes and for new ones."""
        digest = self.hparams.digest()
        refits = self._refits

        def save() -> tuple[bytes, int]:
            from app.engine.cluster import pack

            with tempfile.TemporaryDirectory(prefix="sunrank-publish-") as tmp:
                self.learner.online_events = self._online_since_fit
                path = self.learner.save_checkpoint(tmp, self.watermark)
                return pack(Path(path)), self.watermark

        data, watermark = await self._on_worker(save)
        new_id = await dbio.publish_checkpoint(data, watermark, digest)
        self._adopted = dbio.Published(new_id, watermark, digest)
        self._published_refits, self._last_publish = refits, time.monotonic()
        log.info(
            "fitted state published",
            extra={"fields": {"id": new_id, "watermark": watermark, "bytes": len(data)}},
        )

    async def _restore_published(self, newer_than: int = 0) -> tuple[Any, int] | None:
        """The newest published state (if newer than ``newer_than``), restored off the
        worker, with the online solver ready; ``None`` when there is none."""
        published = await dbio.newest_checkpoint(self.hparams.digest())
        if published is None or published.id <= newer_than:
            return None
        data = await dbio.checkpoint_bytes(published.id)
        if data is None:  # pruned meanwhile: the next look finds the newer one
            return None
        old = self.learner

        def restore() -> tuple[Any, int]:
            from app.engine.cluster import unpack
            from app.learner.model import Learner

            with tempfile.TemporaryDirectory(prefix="sunrank-adopt-") as tmp:
                unpack(data, Path(tmp))
                learner, watermark = Learner.restore_checkpoint(tmp, self.hparams)
            if not _can_reuse_solver(old, learner):
                learner.warm_up()  # traced here, not on the worker
            return learner, watermark

        restored = await asyncio.get_running_loop().run_in_executor(self._refitter, restore)
        self._adopted = published
        return restored

    async def adopt_newest(self) -> bool:
        """Install the newest published state if it is newer than the one installed,
        replaying on top the events this process applied after its watermark."""
        if self._refit_task is not None and not self._refit_task.done():
            return False  # a refit (the admin mutation) swaps into the learner it started on
        self._checkpoint_hint = False
        self._last_adopt_check = started = time.monotonic()
        before = self._adopted
        restored = await self._restore_published(before.id if before is not None else 0)
        if restored is None:
            return False
        learner, watermark = restored
        async with self._apply_lock:
            events: list[Event] = []
            while (upto := events[-1].id if events else watermark) < self.watermark:
                more = await dbio.events_after(upto, self.watermark)
                if not more:
                    break
                events.extend(more)
            update = await self._on_worker(self._install, learner, watermark, events)
        log.info(
            "fitted state adopted",
            extra={"fields": {
                "id": self._adopted.id if self._adopted else None, "watermark": watermark,
                "replayed": len(events), "videos_moved": len(update.videos),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }},
        )  # fmt: skip
        self._broadcast(update)
        return True

    def _install(self, learner: Any, watermark: int, events: list[Event]) -> Update:
        """On the worker: replay ``events`` on ``learner``, then make it the live one."""
        old = self.learner
        if _can_reuse_solver(old, learner):  # keep the traced solver: no retracing
            old.solver.assign(learner.slots.view("theta"), learner.items.view("rho"))
            learner._solver = old.solver
        for event in events:
            try:
                _dispatch(learner, EventKind(event.kind), dict(event.payload))
            except Exception:
                log.exception("event %d could not be replayed; skipped", event.id)
        published = self._views
        self.learner = learner
        self.watermark = max(watermark, events[-1].id if events else 0, self.watermark)
        self._views, self._sum_trust = _all_views(learner)
        self.version += 1
        self._online_since_fit = (learner.online_events or 0) + len(events)
        self._fit_snapshot_at = time.monotonic()
        moved = {
            v: self._views.get(v, {})
            for v in published.keys() | self._views.keys()
            if published.get(v) != self._views.get(v)
        }
        return Update(self.version, None, moved)


def _can_reuse_solver(old: Any, new: Any) -> bool:
    """Whether ``new`` can take over ``old``'s (traced) online solver."""
    solver = None if old is None else old._solver
    return solver is not None and not solver.needs_room(new.slots.n, new.items.n)


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


def _moved_views(
    published: dict[int, dict[str, ScoreView]], snap: Any, res: Any
) -> dict[int, dict[str, ScoreView]]:
    """New views of the videos whose fitted score or uncertainty differs from the
    published one by more than ``VIEW_EPS`` (raw); ``{}`` for a video to unpublish.

    Compared with what is published, not with the snapshot, so differences below
    the threshold never accumulate across refits.

    Runs on the refit thread, holding the GIL for all its Python: the display
    scores are computed in numpy and the per-item loops touch plain lists only
    (per-item ``ScoreView.of`` took ~0.2 s per refit on the demo data, and online
    updates waited for the GIL behind it: 250–450 ms spikes).
    """
    vids = snap.item_video_id.tolist()
    unc = 1.0 / np.sqrt(res.prec_rho)
    rated = snap.ncontrib > 0
    pub = _published(published, vids, snap.item_crit.tolist())
    moved = _moved(pub, _same(pub, res.rho, unc), rated)
    videos = np.unique(snap.item_video_id[moved])
    out: dict[int, dict[str, ScoreView]] = {int(v): {} for v in videos.tolist()}
    idx = np.flatnonzero(np.isin(snap.item_video_id, videos) & rated)
    new = _score_views(
        snap.item_crit[idx], res.rho[idx], unc[idx], snap.ncontrib[idx], snap.ncomp[idx]
    )
    for i, view in zip(idx.tolist(), new, strict=True):
        out[vids[i]][view.criterion] = view
    return {v: _in_criterion_order(d) for v, d in out.items()}


def _published(
    published: dict[int, dict[str, ScoreView]], vids: list[int], crits: list[int]
) -> np.ndarray:
    """(raw, raw uncertainty, contributors, comparisons) published for each
    (video, criterion) item: one row each, NaN (and −1 counts) where none is."""
    empty: dict[str, ScoreView] = {}
    names = CRITERION_NAMES
    return np.array(
        [
            (math.nan, math.nan, -1, -1) if (x := published.get(v, empty).get(names[c])) is None
            else (x.raw, x.raw_uncertainty, x.n_contributors, x.n_comparisons)
            for v, c in zip(vids, crits, strict=True)
        ],
        dtype=np.float64,
    ).reshape(-1, 4)  # fmt: skip


def _same(pub: np.ndarray, raw: np.ndarray, unc: np.ndarray) -> np.ndarray:
    """Items whose raw score and uncertainty are within ``VIEW_EPS`` of ``pub``'s."""
    return (np.abs(raw - pub[:, 0]) <= VIEW_EPS) & (np.abs(unc - pub[:, 1]) <= VIEW_EPS)


def _moved(pub: np.ndarray, same: np.ndarray, rated: np.ndarray) -> np.ndarray:
    """Items to publish again: rated and changed, or published but no longer rated."""
    return (rated & ~same) | (~rated & ~np.isnan(pub[:, 0]))


def _score_views(
    crits: np.ndarray, raw: np.ndarray, unc: np.ndarray, ncontrib: np.ndarray, ncomp: np.ndarray
) -> list[ScoreView]:
    """One :class:`ScoreView` per item, the display scores computed in numpy (a
    per-item ``ScoreView.of`` held the GIL long enough to stall online updates)."""
    score = squash(raw)
    half = (squash(raw + unc) - squash(raw - unc)) / 2
    names = CRITERION_NAMES
    return [
        ScoreView(names[c], sc, h, r, u, int(n_c), int(n_m))
        for c, r, u, sc, h, n_c, n_m in zip(
            crits.tolist(), raw.tolist(), unc.tolist(), score.tolist(), half.tolist(),
            ncontrib.tolist(), ncomp.tolist(), strict=True,
        )
    ]  # fmt: skip


def _in_criterion_order(view: dict[str, ScoreView]) -> dict[str, ScoreView]:
    return dict(sorted(view.items(), key=lambda kv: _CRITERION_ORDER[kv[0]]))


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
