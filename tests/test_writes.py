"""The write path: every change and its event in one transaction."""

import pytest
from tortoise.exceptions import IntegrityError

from app.db import writes
from app.db.models import Comparison, ComparisonScore, Event, EventKind, User, Video


async def _setup():
    user = await User.create(username="alice")
    a = await Video.create(youtube_id="aaaaaaaaaaa")
    b = await Video.create(youtube_id="bbbbbbbbbbb")
    return user, a, b


async def test_create_update_delete_write_one_event_each(db):
    user, a, b = await _setup()
    _, created = await writes.upsert_comparison(user.id, a.id, b.id, {"pedagogy": (3, 10)})
    assert created.kind == EventKind.COMPARISON_CREATED
    assert created.payload == {
        "user": user.id,
        "video_a": a.id,
        "video_b": b.id,
        "scores": {"pedagogy": [3, 10]},
    }

    _, same = await writes.upsert_comparison(user.id, a.id, b.id, {"pedagogy": (3, 10)})
    assert same is None, "an unchanged comparison writes no event"

    _, updated = await writes.upsert_comparison(
        user.id, a.id, b.id, {"largely_recommended": (-2, 2)}
    )
    assert updated.kind == EventKind.COMPARISON_UPDATED
    scores = await ComparisonScore.all().values_list("criterion", "score", "score_max")
    assert scores == [("largely_recommended", -2, 2)], "criteria not resubmitted are dropped"

    deleted = await writes.delete_comparison(user.id, b.id, a.id)
    assert deleted.kind == EventKind.COMPARISON_DELETED
    assert await Comparison.all().count() == 0 and await ComparisonScore.all().count() == 0
    assert await writes.delete_comparison(user.id, a.id, b.id) is None
    assert [e.id for e in await Event.all().order_by("id")] == [created.id, updated.id, deleted.id]


async def test_reversed_pair_is_stored_canonically_with_negated_scores(db):
    user, a, b = await _setup()
    comparison, event = await writes.upsert_comparison(user.id, b.id, a.id, {"pedagogy": (4, 10)})
    assert (comparison.video_a_id, comparison.video_b_id) == (a.id, b.id)
    assert await ComparisonScore.all().values_list("score", flat=True) == [-4]
    assert event.payload["scores"] == {"pedagogy": [-4, 10]}


async def test_a_rejected_comparison_writes_no_event(db):
    user, a, b = await _setup()
    with pytest.raises(IntegrityError):
        await writes.upsert_comparison(user.id, a.id, b.id, {"pedagogy": (30, 10)})
    assert await Comparison.all().count() == 0
    assert await Event.all().count() == 0


async def test_trust_vouch_and_visibility_events(db):
    user, a, _ = await _setup()
    bob = await User.create(username="bob")
    assert (await writes.set_pretrust(user.id, 0.8)).payload == {"user": user.id, "pretrust": 0.8}
    assert await writes.set_pretrust(user.id, 0.8) is None
    assert (await writes.set_vouch(user.id, bob.id, True)).payload["active"] is True
    assert await writes.set_vouch(user.id, bob.id, True) is None
    assert (await writes.set_vouch(user.id, bob.id, False)).payload["active"] is False
    assert await writes.set_visibility(user.id, a.id, True) is None, "public is the default"
    assert (await writes.set_visibility(user.id, a.id, False)).kind == EventKind.VISIBILITY_CHANGED
    assert await Event.all().count() == 4
