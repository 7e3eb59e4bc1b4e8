"""Tournesol dataset import and export, against real databases and real samples."""

import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from app.datasets.exporter import _paged, export_dataset
from app.datasets.importer import ImportAborted, import_dataset
from app.datasets.reader import DatasetError, read_dataset
from app.db import writes
from app.db.models import (
    Comparison,
    ComparisonScore,
    Event,
    EventKind,
    RatingVisibility,
    User,
    Video,
    Vouch,
)
from app.engine.dbio import load_inputs
from tests.conftest import SAMPLE, TINY, empty_database_like

HEADER = "public_username,video_a,video_b,criteria,score,score_max,week_date\n"
GOOD = "alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,3,10,2024-01-01\n"


async def _snapshot() -> tuple:
    """Everything an import may touch, to prove a failed import changed nothing."""
    return (
        await User.all().order_by("id").values_list("id", "username", "pretrust"),
        await Video.all().order_by("id").values_list("id", "youtube_id"),
        await Comparison.all()
        .order_by("id")
        .values_list("id", "user_id", "video_a_id", "video_b_id"),
        await ComparisonScore.all()
        .order_by("id")
        .values_list("comparison_id", "criterion", "score", "score_max"),
        await Vouch.all().order_by("id").values_list("voucher_id", "vouchee_id"),
        await Event.all().order_by("id").values_list("id", "kind"),
    )


async def _public_comparisons() -> Counter:
    rows = await ComparisonScore.all().values_list(
        "comparison__user__username",
        "comparison__video_a__youtube_id",
        "comparison__video_b__youtube_id",
        "criterion",
        "score",
        "score_max",
    )
    # Orientation-free: the pair sorted by YouTube id, the score signed accordingly.
    out = Counter()
    for user, a, b, crit, score, score_max in rows:
        if a > b:
            a, b, score = b, a, -score
        out[(user, a, b, crit, score, score_max)] += 1
    return out


@pytest.mark.parametrize(
    ("path", "score_rows", "videos", "users", "vouches"),
    # every name of vouchers.csv is a user too (88 in the 2024-01 sample, 5 of them
    # with comparisons), so that every vouch imports
    [(TINY, 38_387, 6_248, 88, 129), (SAMPLE, 2_268, 887, 21, 52)],
)
async def test_import_counts(db, path, score_rows, videos, users, vouches):
    report = await import_dataset(read_dataset(path))
    assert not report.bad_rows
    assert await ComparisonScore.all().count() == score_rows
    assert await Video.all().count() == videos
    assert await User.all().count() == users
    assert await Vouch.all().count() == vouches
    comparisons = await Comparison.all().count()
    created = await Event.filter(kind=EventKind.COMPARISON_CREATED).count()
    assert created == comparisons == report.comparisons_created
    assert await User.filter(username="aidjango").values_list("pretrust", flat=True) == [1.0]
    # The dataset's trust_score already counts its vouches: they are stored as imported,
    # with no event, and the learner's inputs leave them out.
    assert await Vouch.filter(imported=False).count() == 0
    assert await Event.filter(kind=EventKind.VOUCH_CHANGED).count() == 0
    assert (await load_inputs()).vouches == []


async def test_a_vouch_made_here_propagates_beside_imported_ones(db):
    await import_dataset(read_dataset(SAMPLE))
    voucher, vouchee = await User.get(username="Antarctus"), await User.get(username="aidjango")
    await writes.set_vouch(voucher.id, vouchee.id, True)
    assert (await load_inputs()).vouches == [(voucher.id, vouchee.id)]


async def test_import_twice_changes_nothing(db):
    await import_dataset(read_dataset(SAMPLE))
    before = await _snapshot()
    report = await import_dataset(read_dataset(SAMPLE))
    assert (report.comparisons_created, report.comparisons_updated, report.events) == (0, 0, 0)
    assert await _snapshot() == before


async def test_changed_scores_become_updates(db, tmp_path):
    (tmp_path / "comparisons.csv").write_text(HEADER + GOOD)
    await import_dataset(read_dataset(tmp_path))
    (tmp_path / "comparisons.csv").write_text(HEADER + GOOD.replace(",3,10,", ",-4,10,"))
    report = await import_dataset(read_dataset(tmp_path))
    assert (report.comparisons_created, report.comparisons_updated) == (0, 1)
    assert await ComparisonScore.all().values_list("score", flat=True) in ([-4], [4])
    assert await Event.filter(kind=EventKind.COMPARISON_UPDATED).count() == 1


BAD_ROWS = {
    "non-integer score": "alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,2.5,10,2024-01-01\n",
    "out-of-range score": "alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,11,10,2024-01-01\n",
    "same video twice": "alice,aaaaaaaaaaa,aaaaaaaaaaa,largely_recommended,1,10,2024-01-01\n",
    "unknown criterion": "alice,aaaaaaaaaaa,bbbbbbbbbbb,funniness,1,10,2024-01-01\n",
    "malformed video id": "alice,aaaaaaaaaaa,bbbb,largely_recommended,1,10,2024-01-01\n",
    "truncated line": "alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recom\n",
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
async def test_bad_rows_are_reported_and_strict_changes_nothing(db, tmp_path, case):
    await import_dataset(read_dataset(SAMPLE))
    before = await _snapshot()
    other = "bob,ccccccccccc,ddddddddddd,largely_recommended,-2,2,2024-01-01\n"
    (tmp_path / "comparisons.csv").write_text(HEADER + other + BAD_ROWS[case])
    dataset = read_dataset(tmp_path)
    assert [b.line for b in dataset.bad_rows] == [3], dataset.bad_rows

    with pytest.raises(ImportAborted) as err:
        await import_dataset(dataset, strict=True)
    assert err.value.bad_rows[0].line == 3
    assert await _snapshot() == before

    report = await import_dataset(dataset)  # default: skip bad rows, import the rest
    assert len(report.bad_rows) == 1 and report.comparisons_created == 1
    assert await User.filter(username="bob").exists()


def test_bad_row_reasons_are_readable(tmp_path):
    (tmp_path / "comparisons.csv").write_text(HEADER + "".join(BAD_ROWS.values()) + GOOD + GOOD)
    reasons = [b.reason for b in read_dataset(tmp_path).bad_rows]
    assert "score '2.5' is not an integer" in reasons[0]
    assert "outside [-10, 10]" in reasons[1]
    assert "compared with itself" in reasons[2]
    assert "unknown criterion 'funniness'" in reasons[3]
    assert "not a YouTube video id" in reasons[4]
    assert reasons[5].startswith("truncated line")
    assert reasons[6].startswith("duplicate of line 8")


async def test_reads_zip_index_column_and_missing_score_max(db, tmp_path):
    rows = [
        ",public_username,video_a,video_b,criteria,score,week_date\n",
        "0,alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,-10,2024-01-01\n",
        "1,alice,bbbbbbbbbbb,aaaaaaaaaaa,importance,4,2024-01-01\n",
    ]
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tournesol_dataset/comparisons.csv", "".join(rows))
    dataset = read_dataset(archive)
    assert not dataset.bad_rows and dataset.score_rows == 2
    await import_dataset(dataset)
    (comparison,) = await Comparison.all()
    scores = dict(await ComparisonScore.all().values_list("criterion", "score"))
    assert scores == {"largely_recommended": -10, "importance": -4}  # same orientation, a→b
    assert await ComparisonScore.filter(score_max=10).count() == 2
    assert comparison.created_at.date().isoformat() == "2024-01-01"


def test_unreadable_datasets_say_why(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"no comparisons\.csv"):
        read_dataset(tmp_path)
    (tmp_path / "comparisons.csv").write_text("user,a,b\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_dataset(tmp_path)


@pytest.mark.parametrize("path", [TINY, SAMPLE])
async def test_export_then_import_reproduces_the_comparisons(db, db_url, tmp_path, path):
    await import_dataset(read_dataset(path))
    expected = await _public_comparisons()
    out = tmp_path / "export.zip"
    counts = await export_dataset(out, generated_by="http://sunrank.test")
    assert counts["comparisons.csv"] == sum(expected.values())
    with zipfile.ZipFile(out) as zf:
        assert {"README.txt", "LICENSE.txt", "metadata.json", "users.csv", "vouchers.csv"} <= set(
            zf.namelist()
        )

    # Into an empty database of the same kind.
    async with empty_database_like(db_url, tmp_path):
        await import_dataset(read_dataset(out))
        assert await _public_comparisons() == expected
        assert await User.filter(username="aidjango").values_list("pretrust", flat=True) == [1.0]


async def test_exports_read_big_tables_in_pages_that_add_up(db):
    await import_dataset(read_dataset(SAMPLE))
    fields = ("comparison_id", "criterion", "score", "comparison__user__username")
    paged = await _paged(ComparisonScore, None, fields, key=(0, 1), page=7)
    everything = await ComparisonScore.all().values_list(*fields)
    assert len(everything) > 7 * 100
    assert sorted(paged) == sorted(everything)


async def test_export_leaves_out_private_ratings(db, tmp_path):
    shutil.copy(SAMPLE / "comparisons.csv", tmp_path / "comparisons.csv")
    await import_dataset(read_dataset(tmp_path))
    user = await User.get(username="aidjango")
    video = await Video.get(id=(await Comparison.filter(user=user).first()).video_a_id)
    await RatingVisibility.create(user=user, video=video, is_public=False)
    private = (
        await ComparisonScore.filter(comparison__user=user, comparison__video_a=video).count()
        + await ComparisonScore.filter(comparison__user=user, comparison__video_b=video).count()
    )
    counts = await export_dataset(tmp_path / "out.zip", generated_by="http://sunrank.test")
    assert private > 0
    assert counts["comparisons.csv"] == await ComparisonScore.all().count() - private


def test_datasets_ship_with_their_licence():
    for path in (TINY, SAMPLE):
        assert (path / "LICENSE.txt").exists() and (path / "README.txt").exists()
    assert "Tournesol" in Path(TINY.parent / "PROVENANCE.md").read_text()
