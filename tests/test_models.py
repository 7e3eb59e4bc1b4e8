"""The database itself enforces the invariants (run on SQLite and PostgreSQL)."""

from datetime import UTC, datetime

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.db.models import Comparison, ComparisonScore, User, Video, Vouch

NOW = datetime(2024, 1, 1, tzinfo=UTC)


async def _pair():
    a = await Video.create(youtube_id="aaaaaaaaaaa")
    b = await Video.create(youtube_id="bbbbbbbbbbb")
    return a, b


async def _comparison(user, a, b):
    return await Comparison.create(user=user, video_a=a, video_b=b, created_at=NOW, updated_at=NOW)


async def test_one_comparison_per_user_and_pair(db):
    user = await User.create(username="alice")
    a, b = await _pair()
    await _comparison(user, a, b)
    with pytest.raises(IntegrityError):
        await _comparison(user, a, b)


async def test_pairs_are_stored_in_canonical_order_so_reversed_duplicates_are_impossible(db):
    user = await User.create(username="alice")
    a, b = await _pair()
    with pytest.raises(IntegrityError):
        await _comparison(user, b, a)  # b.id > a.id: not canonical
    with pytest.raises(IntegrityError):
        await _comparison(user, a, a)


@pytest.mark.parametrize(
    ("criterion", "score", "score_max"),
    [
        ("largely_recommended", 11, 10),
        ("largely_recommended", -3, 2),
        ("largely_recommended", 1, 0),
        ("funniness", 1, 10),
    ],
)
async def test_scores_are_checked(db, criterion, score, score_max):
    user = await User.create(username="alice")
    a, b = await _pair()
    comparison = await _comparison(user, a, b)
    with pytest.raises(IntegrityError):
        await ComparisonScore.create(
            comparison=comparison, criterion=criterion, score=score, score_max=score_max
        )
    assert await ComparisonScore.all().count() == 0


async def test_one_score_per_criterion(db):
    user = await User.create(username="alice")
    a, b = await _pair()
    comparison = await _comparison(user, a, b)
    await ComparisonScore.create(comparison=comparison, criterion="pedagogy", score=2, score_max=2)
    with pytest.raises(IntegrityError):
        await ComparisonScore.create(
            comparison=comparison, criterion="pedagogy", score=1, score_max=2
        )


async def test_users_videos_and_vouches_are_checked(db):
    with pytest.raises(IntegrityError):
        await User.create(username="eve", pretrust=1.5)
    with pytest.raises(IntegrityError):
        await Video.create(youtube_id="short")
    alice = await User.create(username="alice")
    with pytest.raises(IntegrityError):
        await User.create(username="alice")
    with pytest.raises(IntegrityError):
        await Vouch.create(voucher=alice, vouchee=alice)


async def test_a_failed_transaction_leaves_nothing(db):
    user = await User.create(username="alice")
    a, b = await _pair()
    with pytest.raises(IntegrityError):
        async with in_transaction() as conn:
            comparison = await Comparison.create(
                user=user, video_a=a, video_b=b, created_at=NOW, updated_at=NOW, using_db=conn
            )
            await ComparisonScore.create(
                comparison=comparison, criterion="pedagogy", score=99, score_max=10, using_db=conn
            )
    assert await Comparison.all().count() == 0


async def test_the_event_log_is_append_only(db):
    from app.db.models import Event, EventKind

    event = await Event.create(kind=EventKind.PRETRUST_CHANGED, payload={"user": 1, "pretrust": 1})
    with pytest.raises(Exception, match="append-only"):
        await Event.filter(id=event.id).update(payload={"user": 2, "pretrust": 1})
    with pytest.raises(Exception, match="append-only"):
        await Event.filter(id=event.id).delete()
    assert (await Event.get(id=event.id)).payload == {"user": 1, "pretrust": 1}
