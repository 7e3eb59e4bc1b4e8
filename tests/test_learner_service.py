"""The learner service on a real database and real TensorFlow: startup fit,
online events from the write path, checkpoint/replay after a crash, corrupt and
stale checkpoints, refit swap, score flush, and the ``train`` command."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from app.config import load_settings
from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import writes
from app.db.models import ContributorScore, User, Video, VideoScore
from app.engine.service import VIEW_EPS, LearnerService, _all_views
from app.learner.hparams import HParams
from tests.conftest import SAMPLE

TOL = 1e-6  # replaying the same events on the same checkpoint: equal up to rounding


def _settings(db_url: str, tmp_path: Path, **kw):
    return load_settings({}, database_url=db_url, data_dir=tmp_path / "data", **kw)


def _scores(service: LearnerService) -> dict[tuple[int, str], float]:
    return {
        (video, crit): view.raw
        for video, views in service._views.items()
        for crit, view in views.items()
    }


def _close(a: dict, b: dict, tol: float = TOL) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tol for k in a)


def _published_match_the_learner(service: LearnerService) -> None:
    """Every published view is the learner's current score (up to ``VIEW_EPS``:
    a refit keeps views that moved less), and no rated video is missing."""
    fresh, sum_trust = _all_views(service.learner)
    assert service._views.keys() == fresh.keys()
    for video, views in fresh.items():
        published = service._views[video]
        assert published.keys() == views.keys(), video
        for crit, view in views.items():
            got = published[crit]
            assert (got.n_contributors, got.n_comparisons) == (
                view.n_contributors, view.n_comparisons,
            )  # fmt: skip
            assert abs(got.raw - view.raw) <= 2 * VIEW_EPS, (video, crit)
            assert abs(got.raw_uncertainty - view.raw_uncertainty) <= 2 * VIEW_EPS
        assert service.sum_trust(video) == pytest.approx(sum_trust[video])


def _abandon(service: LearnerService) -> None:
    """A crash: the threads die, nothing is checkpointed or flushed."""
    service._worker.shutdown(wait=True)
    service._refitter.shutdown(wait=True)


@pytest.fixture
async def sample_db(db):
    await import_dataset(read_dataset(SAMPLE))
    return db


async def _some_pairs(n: int):
    user = await User.get(username="aidjango")
    videos = await Video.all().order_by("id").limit(n + 1)
    return user, videos


async def test_events_are_applied_online_and_survive_a_crash(sample_db, tmp_path, caplog):
    caplog.set_level(logging.WARNING, "sunrank.learner")
    settings = _settings(sample_db, tmp_path)
    first = LearnerService(settings)
    assert await first.start(background=False) is False, "no checkpoint yet: full fit"
    assert "no usable checkpoint" in caplog.text
    assert first.last_fit.converged
    user, videos = await _some_pairs(6)

    version = first.version
    for i in range(5):
        _, event = await writes.upsert_comparison(
            user.id, videos[i].id, videos[i + 1].id, {"largely_recommended": (10, 10)}
        )
        update = await first.apply(event)
        assert update.version > version and videos[i].id in update.videos
        version = update.version
    # the last comparison lifted video i+1 on the main criterion
    main_after = first.video_scores(videos[5].id)["largely_recommended"]
    assert main_after.n_comparisons >= 1 and -100 <= main_after.score <= 100
    before_crash = _scores(first)
    watermark = first.watermark
    _abandon(first)  # no checkpoint after the 5 events

    second = LearnerService(settings)
    assert await second.start(background=False) is True
    assert second.watermark == watermark, "the 5 events were replayed from the log"
    assert _close(_scores(second), before_crash)
    await second.stop()


async def test_a_checkpoint_that_is_a_full_fit_needs_no_refit_at_restore(sample_db, tmp_path):
    """A checkpoint records the events applied online since its state was a full fit:
    none, and the restored process refits nothing until events come; some, and its
    refit is due at once (at 1M rows a needless one cost 0.6 s of CPU beside the
    first requests)."""
    settings = _settings(sample_db, tmp_path)
    fitted = LearnerService(settings)
    await fitted.start(background=False)  # a full fit from the database
    await fitted.stop()  # checkpoint: a full fit, no drift
    restored = LearnerService(settings)
    assert await restored.start(background=False) is True
    assert restored.freshness()["events_since_refit"] == 0
    assert restored._events_since_refit == 0, "no refit due"
    user, videos = await _some_pairs(2)
    _, event = await writes.upsert_comparison(
        user.id, videos[0].id, videos[1].id, {"largely_recommended": (7, 10)}
    )
    await restored.apply(event)
    assert restored.freshness()["events_since_refit"] == 1
    await restored.stop()  # checkpoint: one event of drift
    drifted = LearnerService(settings)
    assert await drifted.start(background=False) is True
    assert drifted.freshness()["events_since_refit"] == 1
    assert drifted._events_since_refit == 1, "its refit is due at once"
    await drifted.refit()
    assert drifted.freshness()["events_since_refit"] == 0
    await drifted.stop()


async def test_events_applied_out_of_order_follow_the_log(sample_db, tmp_path):
    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)
    user, videos = await _some_pairs(2)
    _, e1 = await writes.upsert_comparison(
        user.id, videos[0].id, videos[1].id, {"largely_recommended": (-10, 10)}
    )
    _, e2 = await writes.upsert_comparison(
        user.id, videos[0].id, videos[1].id, {"largely_recommended": (10, 10)}
    )
    await service.apply(e2)  # the later caller comes first: e1 is read from the log
    assert service.watermark == e2.id
    assert (await service.apply(e1)).event_ids == (), "already applied, not re-applied"
    # the final state is e2's (video b preferred), not e1's
    mine = {(s.video_id, s.criterion): s.raw for s in await service.contributor_scores(user.id)}
    assert mine[(videos[1].id, "largely_recommended")] > mine[(videos[0].id, "largely_recommended")]
    await service.stop()


async def test_corrupt_or_stale_checkpoint_leads_to_a_full_fit(sample_db, tmp_path, caplog):
    settings = _settings(sample_db, tmp_path)
    service = LearnerService(settings)
    await service.start(background=False)
    reference = _scores(service)
    await service.stop()

    stale = LearnerService(settings, HParams(lam=0.5))
    assert await stale.start(background=False) is False
    await stale.stop()  # writes a checkpoint for lam=0.5 (the newest)

    for ckpt in sorted(settings.checkpoint_dir.iterdir()):
        for f in ckpt.rglob("*"):
            if f.is_file() and f.name != "meta.json":
                f.write_bytes(b"garbage")
    caplog.set_level(logging.WARNING, "sunrank.learner")
    fresh = LearnerService(settings)
    assert await fresh.start(background=False) is False, "corrupt: never a crash, a fit"
    assert "no usable checkpoint" in caplog.text
    assert _close(_scores(fresh), reference, 1e-4)
    await fresh.stop()


async def test_refit_swaps_in_with_the_events_that_arrived_meanwhile(sample_db, tmp_path):
    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)
    user, videos = await _some_pairs(8)

    # the fit waits until the events are applied: the swap replays all of them
    release = threading.Event()
    service._refitter.submit(release.wait)
    refit = asyncio.create_task(service.refit())
    while service.learner._solve_log is None:  # until the snapshot is taken
        await asyncio.sleep(0.01)
    for i in range(8):
        _, event = await writes.upsert_comparison(
            user.id, videos[i].id, videos[i + 1].id, {"importance": (i - 4, 10)}
        )
        await service.apply(event)
    release.set()
    await refit
    _published_match_the_learner(service)  # the swap republished what its replay moved
    await service.refit()  # a second refit on top: the batch optimum of everything
    _published_match_the_learner(service)
    optimum = _scores(service)

    reference = LearnerService(_settings(sample_db, tmp_path / "other"))
    await reference.start(background=False)  # full fit from the database
    assert _close(optimum, _scores(reference), 1e-4)
    await reference.stop()

    traces = service.learner.trace_count
    _, event = await writes.upsert_comparison(
        user.id, videos[0].id, videos[1].id, {"importance": (-3, 10)}
    )
    assert (await service.apply(event)).event_ids == (event.id,)
    assert service.learner.trace_count == traces, "the refit kept the compiled solver"
    await service.stop()


async def test_an_event_applied_between_two_slices_of_a_replay(sample_db, tmp_path, monkeypatch):
    """The swap replays in slices (one solve each here); an event applied between two
    of them is solved on the partly replayed state and publishes its videos, which the
    end of the swap must not overwrite with the fit's older views of them."""
    from app.learner import refit as refit_module

    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)
    _, videos = await _some_pairs(12)
    early = await User.create(username="early", password_hash="x")
    late = await User.create(username="late", password_hash="x")
    # before the refit, drift around videos 9 and 11, which the fit will move (its
    # views): a trust change leaves its contributor's θ to the next refit
    _, event = await writes.upsert_comparison(
        early.id, videos[9].id, videos[11].id, {"largely_recommended": (6, 10)}
    )
    await service.apply(event)
    trusted = await writes.set_pretrust(early.id, 0.8)
    assert trusted is not None
    await service.apply(trusted)
    release = threading.Event()
    service._refitter.submit(release.wait)
    try:
        refit = asyncio.create_task(service.refit())
        while service.learner._solve_log is None:
            await asyncio.sleep(0.01)
        for i in range(4):  # applied during the fit: the replay re-solves them
            _, event = await writes.upsert_comparison(
                late.id, videos[i].id, videos[i + 1].id, {"largely_recommended": (8 - 4 * i, 10)}
            )
            await service.apply(event)
        _, between = await writes.upsert_comparison(  # applied between two slices
            early.id, videos[9].id, videos[10].id, {"largely_recommended": (-10, 10)}
        )
        slices = []
        replay = refit_module.replay

        def one_solve_then_the_event(learner, log, budget):
            out = replay(learner, log, 0.0)
            slices.append(len(log))
            if len(slices) == 1:  # on the worker, between two slices, as it would be
                service._apply_events([between])
            return out

        monkeypatch.setattr(refit_module, "replay", one_solve_then_the_event)
        release.set()
        await refit
    finally:
        release.set()
    assert slices[0] >= 4 and slices == list(range(slices[0], 0, -1)), "a solve per slice"
    assert service.watermark == between.id
    _published_match_the_learner(service)
    await service.stop()


async def test_scores_are_flushed_to_the_score_tables(sample_db, tmp_path):
    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)  # the startup fit checkpoints and flushes
    n_views = sum(len(v) for v in service._views.values())
    assert await VideoScore.all().count() == n_views
    assert await ContributorScore.filter(voting_right__gt=0).count() > 0
    row = await VideoScore.filter(criterion="largely_recommended").first()
    assert row.score == pytest.approx(service.video_scores(row.video_id)[row.criterion].score)

    user, videos = await _some_pairs(1)
    _, event = await writes.upsert_comparison(
        user.id, videos[0].id, videos[1].id, {"pedagogy": (7, 10)}
    )
    await service.apply(event)
    await service.flush_scores()
    assert await VideoScore.filter(video_id=videos[0].id, criterion="pedagogy").exists()
    assert await ContributorScore.filter(user=user, criterion="pedagogy").count() >= 2
    trust = dict(await User.all().values_list("username", "trust"))
    assert trust["aidjango"] == pytest.approx(1.0)
    await service.stop()


async def test_rankings_table_and_safe_rule(sample_db, tmp_path):
    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)
    table = await service.ranking_table()
    assert table is await service.ranking_table(), "cached per score version"
    safe = table.safe()
    main = table.scores[:, 0]
    assert np.all(main[safe] > 20) and np.all(table.main_sum_trust[safe] >= 1.5)
    for vid in table.video_ids[safe][:5].tolist():
        assert service.is_safe(vid)
    await service.stop()


def test_train_command_fits_and_checkpoints(env_for, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=env_for,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert run("import-tournesol", str(SAMPLE), "--quiet").returncode == 0
    first = run("train")
    assert first.returncode == 0, first.stderr
    assert "full fit" in first.stderr and "max|grad|" in first.stdout
    assert list((tmp_path / "data" / "checkpoints").glob("ckpt-*"))
    again = run("train", "--quiet")  # warm start from the checkpoint
    assert again.returncode == 0 and "restored checkpoint" in again.stderr


async def test_an_empty_database_starts_and_learns_the_first_comparison(db, tmp_path):
    service = LearnerService(_settings(db, tmp_path))
    assert await service.start(background=False) is False
    assert service.video_scores(1) == {}
    user = await User.create(username="first")
    a = await Video.create(youtube_id="aaaaaaaaaaa")
    b = await Video.create(youtube_id="bbbbbbbbbbb")
    _, event = await writes.upsert_comparison(user.id, a.id, b.id, {"pedagogy": (10, 10)})
    update = await service.apply(event)
    assert update.videos[b.id]["pedagogy"].raw > update.videos[a.id]["pedagogy"].raw
    await service.stop()


async def test_untrusted_accounts_cannot_make_a_video_recommendable(sample_db, tmp_path):
    """Sybils (trust 0) can push a video's score, but Tournesol's rule keeps it out
    of default rankings: its raters' trust must sum to 1.5."""
    service = LearnerService(_settings(sample_db, tmp_path))
    await service.start(background=False)
    table = await service.ranking_table()
    target = next(
        int(v)
        for v, trust in zip(table.video_ids, table.main_sum_trust, strict=True)
        if trust < 0.5
    )
    before = service.video_scores(target)["largely_recommended"].score
    others = await Video.exclude(id=target).order_by("id").limit(12)
    for k in range(10):
        sybil = await User.create(username=f"sybil{k}")
        for other in others:
            _, event = await writes.upsert_comparison(
                sybil.id, other.id, target, {"largely_recommended": (10, 10)}
            )
            await service.apply(event)
    after = service.video_scores(target)["largely_recommended"]
    assert after.score > before, "their comparisons do count"
    assert after.n_contributors >= 10
    assert not service.is_safe(target)
    table = await service.ranking_table()
    assert target not in set(table.video_ids[table.safe()].tolist())
    await service.stop()


def test_train_refuses_while_a_server_owns_the_learner(env_for):
    from tests.test_ops import _start_server

    server, _ = _start_server(env_for, "--demo", "--demo-path", str(SAMPLE))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app", "train", "--quiet"],
            env=env_for,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert result.returncode == 1
    assert "use the admin `refit` mutation" in result.stderr
    assert "Traceback" not in result.stderr
