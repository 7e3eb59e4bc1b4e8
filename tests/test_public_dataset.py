"""The public dataset, end to end: the real ``sunrank`` commands import each sample,
fit and export it; the archive is checked file by file and column by column against
the sample and Tournesol's format; a real server publishes the same bytes over HTTP.

Each sample is imported and fitted once per module (the fit of the bigger sample
takes a while): the tests below share it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from collections import Counter
from datetime import date
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from app.config import load_settings
from app.datasets.exporter import ENTRIES, HEADERS
from tests.api.conftest import start_server, stop_server
from tests.conftest import SAMPLE, TINY

pytestmark = pytest.mark.slow

# Tournesol's column order, from backend/tournesol/lib/public_dataset.py
# (tournesol-app/tournesol @ f8110b95): written out here, not imported from the code
# under test, so that a change of the exporter's headers fails.
TOURNESOL_COLUMNS = {
    "users.csv": ["public_username", "trust_score"],
    "comparisons.csv": [
        "public_username", "video_a", "video_b", "criteria", "score", "score_max", "week_date",
    ],
    "individual_criteria_scores.csv": [
        "public_username", "video", "criteria", "score", "uncertainty", "voting_right",
    ],
    "collective_criteria_scores.csv": ["video", "criteria", "score", "uncertainty"],
    "vouchers.csv": ["by_username", "to_username", "value"],
}  # fmt: skip
TOURNESOL_ENTRIES = [
    "README.txt", "LICENSE.txt", "metadata.json", "users.csv", "comparisons.csv",
    "individual_criteria_scores.csv", "collective_criteria_scores.csv", "vouchers.csv",
]  # fmt: skip


def sunrank(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def rows(archive: bytes | Path, name: str) -> list[dict[str, str]]:
    source = archive if isinstance(archive, Path) else io.BytesIO(archive)
    with zipfile.ZipFile(source) as zf:
        text = zf.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def sample_rows(path: Path, name: str) -> list[dict[str, str]]:
    with (path / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


class Built:
    def __init__(self, sample: Path, tmp: Path):
        self.sample = sample
        self.data_dir = tmp / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
        self.env |= {"SUNRANK_DATA_DIR": str(self.data_dir), "SUNRANK_METADATA_WORKER": "false"}
        self.zip = tmp / "cli.zip"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sunrank.sqlite3"


@pytest.fixture(scope="module", params=[SAMPLE, TINY], ids=["sample_2024-12", "tiny_2024-01"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    b = Built(request.param, tmp_path_factory.mktemp(request.param.name))
    out = sunrank(b.env, "import-tournesol", str(b.sample), "--quiet")
    assert "bad rows skipped: 0" in out, out
    sunrank(b.env, "train", "--quiet")
    sunrank(b.env, "export-tournesol", str(b.zip))
    return b


def test_entries_and_csv_dialect_are_tournesols(built: Built):
    with zipfile.ZipFile(built.zip) as zf:
        assert zf.namelist() == TOURNESOL_ENTRIES == list(ENTRIES)
        for name, columns in TOURNESOL_COLUMNS.items():
            raw = zf.read(name)
            assert raw.startswith(",".join(columns).encode() + b"\r\n"), name
            assert raw.count(b"\n") == raw.count(b"\r\n"), f"{name}: csv.DictWriter ends lines CRLF"
        assert zf.read("LICENSE.txt") == (built.sample / "LICENSE.txt").read_bytes()
        readme = zf.read("README.txt").decode()
        assert "ODC-By" in readme and "Tournesol Public" in readme and "tournesol.app" in readme
    assert HEADERS == TOURNESOL_COLUMNS


def test_metadata_names_the_cutoff_the_licence_and_the_algorithm(built: Built):
    with zipfile.ZipFile(built.zip) as zf:
        metadata = json.loads(zf.read("metadata.json"))
    until = date.fromisoformat(metadata["data_included_until"][:10])
    assert metadata["data_included_until"].endswith("T00:00:00+00:00") and until.weekday() == 0
    assert metadata["license"] == "ODC-By-1.0"
    assert metadata["generated_by"].startswith("http")
    assert metadata["algorithm"]["name"] and len(metadata["algorithm"]["version"]) == 16
    assert metadata["algorithm"]["parameters"]["sigma"] == 7.0
    assert metadata["last_event_id"] > 0


def _oriented(row: dict[str, str]) -> tuple:
    a, b, score = row["video_a"], row["video_b"], int(row["score"])
    if a > b:
        a, b, score = b, a, -score
    score_max = int(row.get("score_max") or 10)  # the 2024-01 sample has no score_max
    return (row["public_username"], a, b, row["criteria"], score, score_max, row["week_date"])


def test_comparisons_round_trip_row_by_row(built: Built):
    exported = rows(built.zip, "comparisons.csv")
    expected = Counter(_oriented(r) for r in sample_rows(built.sample, "comparisons.csv"))
    assert Counter(_oriented(r) for r in exported) == expected
    assert all(date.fromisoformat(r["week_date"]).weekday() == 0 for r in exported)
    names = [r["public_username"] for r in exported]
    assert names == sorted(names, key=str.casefold)  # Tournesol orders by username


def test_users_round_trip_trust_within_a_hundredth(built: Built):
    users = sample_rows(built.sample, "users.csv")
    source = {r["public_username"]: float(r["trust_score"]) for r in users}
    contributors = {r["public_username"] for r in sample_rows(built.sample, "comparisons.csv")}
    exported = {r["public_username"]: r["trust_score"] for r in rows(built.zip, "users.csv")}
    # Tournesol's users.csv lists the users who appear in comparisons.csv
    assert set(exported) == contributors
    for name, trust in exported.items():
        assert decimals(trust) <= 2
        assert abs(float(trust) - source[name]) <= 0.01, name
    # Every user of the sample, contributor or not, kept their trust after the fit:
    # the imported vouches were not counted a second time.
    with sqlite3.connect(built.db_path) as conn:
        stored = dict(conn.execute("SELECT username, trust FROM user"))
    assert max(abs(stored[name] - trust) for name, trust in source.items()) <= 0.01


def test_vouchers_round_trip(built: Built):
    vouchers = sample_rows(built.sample, "vouchers.csv")
    source = Counter((r["by_username"], r["to_username"]) for r in vouchers)
    exported = rows(built.zip, "vouchers.csv")
    assert Counter((r["by_username"], r["to_username"]) for r in exported) == source
    assert {r["value"] for r in exported} == {"1.0"}


def test_individual_scores_cover_every_public_rating_rounded_as_tournesol(built: Built):
    exported = rows(built.zip, "individual_criteria_scores.csv")
    compared = set()
    for r in sample_rows(built.sample, "comparisons.csv"):
        for video in (r["video_a"], r["video_b"]):
            compared.add((r["public_username"], video, r["criteria"]))
    assert {(r["public_username"], r["video"], r["criteria"]) for r in exported} == compared
    # the sample's own scores name the same ratings (it lists a subset of criteria)
    theirs = {(r["public_username"], r["video"], r["criteria"])
              for r in sample_rows(built.sample, "individual_criteria_scores.csv")}  # fmt: skip
    assert len(theirs & compared) >= 0.9 * len(theirs)
    for r in exported:
        assert -100 <= float(r["score"]) <= 100 and decimals(r["score"]) <= 2
        assert float(r["uncertainty"]) >= 0 and decimals(r["uncertainty"]) <= 2
        assert 0 <= float(r["voting_right"]) <= 1 and decimals(r["voting_right"]) <= 3
    # each value is the stored one rounded as Tournesol does: 2 decimals, voting rights 3
    with sqlite3.connect(built.db_path) as conn:
        stored = {
            (user, video, crit): (score, unc, vr)
            for user, video, crit, score, unc, vr in conn.execute(
                "SELECT u.username, v.youtube_id, s.criterion, s.score, s.uncertainty, "
                "s.voting_right FROM contributor_score s JOIN user u ON u.id = s.user_id "
                "JOIN video v ON v.id = s.video_id"
            )
        }
    for r in exported:
        score, unc, vr = stored[(r["public_username"], r["video"], r["criteria"])]
        assert (r["score"], r["uncertainty"], r["voting_right"]) == (
            str(round(score, 2)), str(round(unc, 2)), str(round(vr, 3)))  # fmt: skip


def test_collective_scores_cover_every_compared_video(built: Built):
    exported = rows(built.zip, "collective_criteria_scores.csv")
    compared = set()
    for r in sample_rows(built.sample, "comparisons.csv"):
        compared |= {(r["video_a"], r["criteria"]), (r["video_b"], r["criteria"])}
    assert {(r["video"], r["criteria"]) for r in exported} == compared
    # (the samples' own collective files were not cut down with their comparisons)
    for r in exported:
        assert -100 <= float(r["score"]) <= 100 and decimals(r["score"]) <= 2
        assert decimals(r["uncertainty"]) <= 2


def test_export_twice_gives_the_same_bytes(built: Built, tmp_path: Path):
    again = tmp_path / "again.zip"
    sunrank(built.env, "export-tournesol", str(again))
    assert again.read_bytes() == built.zip.read_bytes()


# -- over HTTP ---------------------------------------------------------------


async def _get_when_built(client: httpx.AsyncClient, path: str) -> httpx.Response:
    for _ in range(600):
        response = await client.get(path)
        if response.status_code != 503:
            return response
        assert response.headers["retry-after"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} was never built")


@pytest.mark.parametrize("built", [SAMPLE], ids=["sample_2024-12"], indirect=True)
async def test_http_serves_the_cli_bytes_with_validators(built: Built, tmp_path: Path):
    settings = load_settings(
        {}, data_dir=built.data_dir, metadata_worker=False, export_every_seconds=0.5,
        rate_limit_per_minute=100_000, rate_limit_per_ip_per_minute=100_000,
    )  # fmt: skip
    server, task, url = await start_server(settings)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            first = await _get_when_built(client, "/exports/all.zip")
            assert first.status_code == 200
            assert first.headers["content-type"] == "application/zip"
            assert "attachment" in first.headers["content-disposition"]
            assert ".zip" in first.headers["content-disposition"]
            etag, modified = first.headers["etag"], first.headers["last-modified"]
            assert etag.startswith('"')
            assert int(first.headers["content-length"]) == len(first.content)

            # the CLI, run while the server publishes, writes the same bytes
            cli = tmp_path / "while-serving.zip"
            await asyncio.to_thread(sunrank, built.env, "export-tournesol", str(cli))
            assert cli.read_bytes() == first.content
            assert (built.data_dir / "exports" / "all.zip").read_bytes() == first.content

            # conditional requests
            again = await client.get("/exports/all.zip", headers={"if-none-match": etag})
            assert again.status_code == 304 and again.content == b""
            other = await client.get("/exports/all.zip", headers={"if-none-match": '"nope"'})
            assert other.status_code == 200 and other.content == first.content
            since = await client.get("/exports/all.zip", headers={"if-modified-since": modified})
            assert since.status_code == 304 and since.headers["etag"] == etag
            older = format_datetime(parsedate_to_datetime(modified).replace(year=2001), usegmt=True)
            before = await client.get("/exports/all.zip", headers={"if-modified-since": older})
            assert before.status_code == 200
            head = await client.head("/exports/all.zip")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(first.content))

            csv_response = await client.get("/exports/comparisons.csv")
            assert csv_response.status_code == 200
            assert csv_response.headers["content-type"].startswith("text/csv")
            with zipfile.ZipFile(io.BytesIO(first.content)) as zf:
                assert csv_response.content == zf.read("comparisons.csv")
            tag = {"if-none-match": csv_response.headers["etag"]}
            assert (await client.get("/exports/comparisons.csv", headers=tag)).status_code == 304
            assert (await client.get("/exports/nothing.csv")).status_code == 404

            # Rebuilt on schedule: the same data keep the same file and validators...
            app_exports = server.config.app.state.exports
            builds = app_exports.builds
            for _ in range(600):
                if app_exports.builds >= builds + 2:
                    break
                await asyncio.sleep(0.1)
            assert app_exports.builds >= builds + 2, "no rebuild on schedule"
            same = await client.get("/exports/all.zip")
            assert (same.headers["etag"], same.headers["last-modified"]) == (etag, modified)
            # ...and new data a new one (a vouch, imported: the learner leaves it alone)
            with sqlite3.connect(built.db_path) as conn:
                ids = dict(conn.execute("SELECT username, id FROM user"))
                conn.execute(
                    "INSERT INTO vouch (voucher_id, vouchee_id, created_at, imported) "
                    "VALUES (?, ?, '2024-01-01 00:00:00', 1)",
                    (ids["MrChamo"], ids["aidjango"]),
                )
            for _ in range(600):
                changed = await client.get("/exports/all.zip", headers={"if-none-match": etag})
                if changed.status_code != 304:
                    break
                await asyncio.sleep(0.1)
            assert changed.status_code == 200
            assert changed.headers["etag"] != etag
            vouches = rows(changed.content, "vouchers.csv")
            assert ("MrChamo", "aidjango") in {
                (r["by_username"], r["to_username"]) for r in vouches
            }
    finally:
        await stop_server(server, task)


def test_export_to_an_unwritable_path_says_so(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env["SUNRANK_DATA_DIR"] = str(tmp_path / "data")
    (tmp_path / "taken").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "app", "export-tournesol", str(tmp_path / "taken")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot write {tmp_path / 'taken'}: Is a directory"
    )
    assert "Traceback" not in result.stderr
