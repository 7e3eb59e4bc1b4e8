"""Write the database as a Tournesol public dataset zip (public ratings only).

A comparison is public when its author's ratings of both videos are public (as on
Tournesol); contributor scores likewise. Rows are sorted so that two exports of the
same data are byte-identical apart from metadata.json's timestamp.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from app.criteria import CRITERION_NAMES
from app.db.models import (
    ComparisonScore,
    ContributorScore,
    RatingVisibility,
    User,
    VideoScore,
    Vouch,
)


def _csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _week_date(moment: datetime) -> str:
    return (moment.date() - timedelta(days=moment.weekday())).isoformat()


async def export_dataset(out: str | Path) -> dict[str, int]:
    """Write the zip atomically; return the number of rows of each CSV."""
    private = set(await RatingVisibility.filter(is_public=False).values_list("user_id", "video_id"))
    rows = await ComparisonScore.all().values_list(
        "comparison__user__username",
        "comparison__user_id",
        "comparison__video_a_id",
        "comparison__video_a__youtube_id",
        "comparison__video_b_id",
        "comparison__video_b__youtube_id",
        "criterion",
        "score",
        "score_max",
        "comparison__created_at",
    )
    comparisons, contributors = [], set()
    for name, uid, a, a_yt, b, b_yt, crit, score, score_max, created in rows:
        if (uid, a) in private or (uid, b) in private:
            continue
        contributors.add(name)
        comparisons.append([name, a_yt, b_yt, crit, score, score_max, _week_date(created)])
    comparisons.sort()

    users = sorted(
        [name, round(trust, 6)]
        for name, trust in await User.filter(username__in=contributors).values_list(
            "username", "trust"
        )
    )
    vouchers = sorted(
        [a, b, 1.0]
        for a, b in await Vouch.all().values_list("voucher__username", "vouchee__username")
    )
    individual = sorted(
        [name, yt, crit, round(score, 4), round(unc, 4), round(vr, 4)]
        for name, uid, vid, yt, crit, score, unc, vr in await ContributorScore.all().values_list(
            "user__username",
            "user_id",
            "video_id",
            "video__youtube_id",
            "criterion",
            "score",
            "uncertainty",
            "voting_right",
        )
        if (uid, vid) not in private and name in contributors
    )
    collective = sorted(
        [yt, crit, round(score, 4), round(unc, 4)]
        for yt, crit, score, unc in await VideoScore.all().values_list(
            "video__youtube_id", "criterion", "score", "uncertainty"
        )
    )
    metadata = {
        "data_included_until": datetime.now(UTC).isoformat(timespec="seconds"),
        "generated_by": "sunrank",
        "license": "ODC-By-1.0",
        "criteria": list(CRITERION_NAMES),
    }
    files = {
        "comparisons.csv": _csv(
            [
                "public_username",
                "video_a",
                "video_b",
                "criteria",
                "score",
                "score_max",
                "week_date",
            ],
            comparisons,
        ),
        "users.csv": _csv(["public_username", "trust_score"], users),
        "vouchers.csv": _csv(["by_username", "to_username", "value"], vouchers),
        "individual_criteria_scores.csv": _csv(
            ["public_username", "video", "criteria", "score", "uncertainty", "voting_right"],
            individual,
        ),
        "collective_criteria_scores.csv": _csv(
            ["video", "criteria", "score", "uncertainty"], collective
        ),
        "metadata.json": json.dumps(metadata, indent=2) + "\n",
        "README.txt": resources.files("app.datasets").joinpath("tournesol_README.txt").read_text(),
        "LICENSE.txt": resources.files("app.datasets")
        .joinpath("tournesol_LICENSE.txt")
        .read_text(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in files.items():
                zf.writestr(name, text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {name: text.count("\n") - 1 for name, text in files.items() if name.endswith(".csv")}
