"""The ``sunrank`` command as a user runs it: a real subprocess on a SQLite file."""

import subprocess
import sys
import zipfile

from tests.conftest import SAMPLE


def sunrank(env, *args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_import_export_round_trip_and_idempotence(env_for, tmp_path):
    first = sunrank(env_for, "import-tournesol", str(SAMPLE), "--quiet")
    assert "911 new" in first.stdout and "bad rows skipped: 0" in first.stdout
    again = sunrank(env_for, "import-tournesol", str(SAMPLE), "--quiet")
    assert "0 new, 0 updated, 911 unchanged" in again.stdout

    out = tmp_path / "export.zip"
    exported = sunrank(env_for, "export-tournesol", str(out))
    assert "2268 comparisons.csv" in exported.stdout
    with zipfile.ZipFile(out) as zf:
        assert zf.read("comparisons.csv").decode().count("\n") == 2269


def test_strict_import_with_a_bad_row_fails_and_names_the_line(env_for, tmp_path):
    (tmp_path / "comparisons.csv").write_text(
        "public_username,video_a,video_b,criteria,score\n"
        "alice,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,12\n"
    )
    result = sunrank(env_for, "import-tournesol", str(tmp_path), "--strict", "--quiet", check=False)
    assert result.returncode == 1
    assert "comparisons.csv:2: score 12 is outside [-10, 10]" in result.stderr
    assert "nothing imported" in result.stderr


def test_a_bad_setting_stops_with_one_line_naming_it(env_for):
    env_for["SUNRANK_CACHE_URL"] = "memcached://localhost"
    result = sunrank(env_for, "migrate", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sunrank: configuration error: SUNRANK_CACHE_URL='memcached://localhost': "
        "expected a URL starting with one of memory, redis://"
    ]


def test_missing_dataset_is_a_clear_error(env_for, tmp_path):
    result = sunrank(env_for, "import-tournesol", str(tmp_path / "nope.zip"), check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr
