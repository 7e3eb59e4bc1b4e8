"""Usernames (issue 8, deliverable 6): NFKC-normalised, unique by case and by
confusable skeleton (Unicode TR39), while every username of Tournesol's public
datasets stays valid. Registration over real HTTP on SQLite and PostgreSQL; the
importer and migration 0003 on both databases, the migration on populated data."""

from __future__ import annotations

import csv
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

from app import auth
from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import usernames
from app.db.connection import tortoise_config
from app.db.models import Comparison, User
from app.db.validation import InvalidInput
from tests.api.conftest import PASSWORD, Api
from tests.conftest import SAMPLE, TINY

api_test = pytest.mark.asyncio(loop_scope="session")
ERRORS = "userErrors { field message code }"
REGISTER = (
    "mutation($u: String!, $p: String!) { register(input: {username: $u, password: $p}) "
    "{ user { username } " + ERRORS + " } }"
)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


async def tables(api: Api) -> dict[str, Any]:
    snapshot = await api.snapshot()
    del snapshot["learner_version"], snapshot["scores"]  # a background refit may swap in
    return snapshot


async def register(api: Api, name: str) -> dict:
    return (await api.gql(REGISTER, {"u": name, "p": PASSWORD}))["data"]["register"]


# --- registration over HTTP ------------------------------------------------------------


@api_test
async def test_look_alikes_of_an_existing_name_are_refused(api):
    name = f"admin{uuid.uuid4().hex[:8]}"
    assert (await register(api, name))["userErrors"] == []
    look_alikes = {
        "upper case": name.upper(),
        "capitalised": name.capitalize(),
        "Cyrillic а": "\u0430" + name[1:],
        "fullwidth": fullwidth(name),
        "m as rn": name.replace("m", "rn", 1),
        "padded": f"  {name} ",
        "mixed": "\u0410" + fullwidth(name[1:4]) + name[4:].upper(),
    }
    before = await tables(api)
    for case, other in look_alikes.items():
        answer = await register(api, other)
        assert answer["user"] is None, case
        ((error,),) = [answer["userErrors"]]
        assert (error["field"], error["code"]) == ("username", "USERNAME_TAKEN"), (case, answer)
        assert repr(name) in error["message"], (case, error)
    assert await tables(api) == before


@pytest.mark.parametrize(
    "name",
    [
        "Pierre M {}",  # Tournesol: spaces
        "Helios-火リオス{}",  # Japanese and Chinese
        "محمد علي {}",  # Arabic
        "Vilĉjo {}",
        "Þþanon {}",
        "Иван {}",
        "user.name+tag@x-{}",  # what the old rule allowed still works
    ],
)
@api_test
async def test_tournesol_style_names_register_and_log_in(api, name):
    name = name.format(uuid.uuid4().hex[:6])
    answer = await register(api, name)
    assert answer == {"user": {"username": name}, "userErrors": []}
    assert await api.login(name)


@api_test
async def test_names_are_stored_nfkc_and_found_however_typed(api):
    tag = uuid.uuid4().hex[:6]
    answer = await register(api, fullwidth(f"Full{tag}") + "\u00a0")  # and a no-break space
    assert answer == {"user": {"username": f"Full{tag}"}, "userErrors": []}
    for typed in (f"Full{tag}", f" Full{tag} ", fullwidth(f"Full{tag}"), f"FULL{tag}"):
        assert await api.login(typed), typed


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "a\tb", "a\nb", "a\u0007b", "a\u200bb", "a\u202eb", "a\u2028b", "\ue000x",
     "x" * 151],
)  # fmt: skip
@api_test
async def test_invalid_names_are_refused(api, bad):
    before = await tables(api)
    answer = await register(api, bad)
    assert answer["user"] is None
    assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [
        ("username", "BAD_USERNAME")
    ], answer
    assert await tables(api) == before


# --- the importer -----------------------------------------------------------------------


def dataset_usernames(path: Path, *files: str) -> set[str]:
    names = set()
    for file in files:
        with open(path / file, encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream):
                names |= {v for k, v in row.items() if k.endswith("username")}
    return names


@pytest.mark.slow
@pytest.mark.parametrize("path", [SAMPLE, TINY], ids=["sample", "tiny"])
async def test_every_username_of_the_public_samples_imports(db, path):
    dataset = read_dataset(path)
    assert not [b for b in dataset.bad_rows if "username" in b.reason], dataset.bad_rows
    report = await import_dataset(dataset)
    assert report.lookalikes == []
    # every name of every file is a user (vouchers.csv names people with no public
    # comparison in the sample: they are imported too, so every vouch is)
    everyone = dataset_usernames(path, "comparisons.csv", "users.csv", "vouchers.csv")
    assert everyone == set(await User.all().values_list("username", flat=True))
    if path == TINY:  # read as a valid name (the sample has no comparison of theirs)
        assert ("Pierre M", "BenBenne") in dataset.vouches
    assert report.vouches_created == len(dataset.vouches) > 0
    assert {n for pair in dataset.vouches for n in pair} <= everyone
    shared = Path("/work/shared/data/tournesol") / path.name
    if shared.is_dir():  # the copy shipped beside every checkout holds the same names
        assert dataset_usernames(shared, "comparisons.csv", "users.csv", "vouchers.csv") == (
            everyone
        )


async def test_an_import_keeps_look_alike_contributors_apart_and_says_so(db, tmp_path):
    rows = [
        "public_username,video_a,video_b,criteria,score,score_max,week_date",
        "bob,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,3,10,2024-01-01",
        "Bob,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,-2,10,2024-01-01",
        "b\u043eb,aaaaaaaaaaa,bbbbbbbbbbb,largely_recommended,1,10,2024-01-01",  # Cyrillic о
        "\uff42\uff4f\uff42,aaaaaaaaaaa,ccccccccccc,largely_recommended,1,10,2024-01-01",  # ｂｏｂ
        "Pierre M,aaaaaaaaaaa,ccccccccccc,largely_recommended,1,10,2024-01-01",
        "Helios-火リオス,aaaaaaaaaaa,ccccccccccc,largely_recommended,1,10,2024-01-01",
    ]
    (tmp_path / "comparisons.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = await import_dataset(read_dataset(tmp_path))
    # ｂｏｂ is bob once NFKC-normalised: the same contributor, two comparisons
    assert sorted(await User.all().values_list("username", flat=True)) == [
        "Bob", "Helios-火リオス", "Pierre M", "bob", "bоb"
    ]  # fmt: skip
    assert await Comparison.filter(user__username="bob").count() == 2
    assert sorted(report.lookalikes) == [("bob", "Bob"), ("bоb", "Bob")]
    assert "look-alike usernames imported as distinct accounts" in report.summary()
    again = await import_dataset(read_dataset(tmp_path))
    assert again.lookalikes == [] and again.users_created == 0
    for name in ("BOB", "bob", "b\u043eb "):
        with pytest.raises(InvalidInput) as refused:
            await auth.create_user(name, PASSWORD)
        assert refused.value.code == "USERNAME_TAKEN"


# --- migration 0003 (and 0004) on a populated database ----------------------------------


async def _migrate(db_url: str, target: str | None = None) -> None:
    async with TortoiseContext():
        await migrate(config=tortoise_config(db_url), target=target)


class Raw:
    """SQL on the database under test, outside the ORM (which knows the new column)."""

    def __init__(self, db_url: str):
        self.url = db_url

    async def run(self, sql: str) -> list[tuple]:
        if self.url.startswith("sqlite://"):
            with sqlite3.connect(self.url.removeprefix("sqlite://")) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        import asyncpg

        conn = await asyncpg.connect(self.url.replace("postgres://", "postgresql://"))
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()


@pytest.mark.slow
async def test_migration_on_a_populated_database_keeps_every_row(db_url):
    await _migrate(db_url, "models.0002_event_append_only")
    raw = Raw(db_url)
    true = "1" if db_url.startswith("sqlite") else "true"
    false = "0" if db_url.startswith("sqlite") else "false"
    now = "'2024-01-01 00:00:00+00:00'"
    await raw.run(
        'INSERT INTO "user" (username, pretrust, trust, is_admin, created_at) VALUES '
        f"('admin', 0, 0, {true}, {now}), ('Admin', 0, 0, {false}, {now}), "
        f"('\u0430dmin', 0, 0, {false}, {now}), ('Pierre M', 0.5, 0, {false}, {now})"
    )
    await raw.run(
        "INSERT INTO video (youtube_id, title, uploader, language, added_at, published_at) "
        f"VALUES ('aaaaaaaaaaa', '', '', '', {now}, '2024-01-01 23:00:00-05:00'), "
        f"('bbbbbbbbbbb', '', '', '', {now}, '2024-01-02 01:00:00+00:00')"
    )
    await raw.run(
        "INSERT INTO comparison (user_id, video_a_id, video_b_id, created_at, updated_at) "
        f"VALUES (4, 1, 2, {now}, {now}), (2, 1, 2, {now}, {now})"
    )
    await raw.run(
        "INSERT INTO comparison_score (comparison_id, criterion, score, score_max) "
        "VALUES (1, 'largely_recommended', 3, 10)"
    )
    await raw.run(
        f"INSERT INTO api_token (user_id, token_sha256, created_at, revoked) "
        f"VALUES (2, 'x', {now}, {false})"
    )
    await raw.run(f"INSERT INTO vouch (voucher_id, vouchee_id, created_at) VALUES (1, 4, {now})")
    await raw.run(
        f"INSERT INTO rating_visibility (user_id, video_id, is_public) VALUES (4, 1, {false})"
    )
    counts = "SELECT (SELECT COUNT(*) FROM comparison), (SELECT COUNT(*) FROM comparison_score), "
    counts += "(SELECT COUNT(*) FROM api_token), (SELECT COUNT(*) FROM vouch), "
    counts += "(SELECT COUNT(*) FROM rating_visibility)"
    before = await raw.run(counts)

    await _migrate(db_url)

    assert await raw.run(counts) == before == [(2, 1, 1, 1, 1)]
    assert await raw.run('SELECT id, username, username_key FROM "user" ORDER BY id') == [
        (1, "admin", "adrnin"),
        (2, "Admin", "adrnin\t2"),  # already there: kept, with a suffixed key
        (3, "\u0430dmin", "adrnin\t3"),
        (4, "Pierre M", "pierre rn"),
    ]
    for sql in (
        # the key is required and unique, the other constraints survive
        'INSERT INTO "user" (username, username_key, pretrust, trust, is_admin, created_at) '
        f"VALUES ('ADMIN', 'adrnin', 0, 0, {false}, {now})",
        'INSERT INTO "user" (username, pretrust, trust, is_admin, created_at) '
        f"VALUES ('nokey', 0, 0, {false}, {now})",
        'INSERT INTO "user" (username, username_key, pretrust, trust, is_admin, created_at) '
        f"VALUES ('admin', 'other', 0, 0, {false}, {now})",
        'INSERT INTO "user" (username, username_key, pretrust, trust, is_admin, created_at) '
        f"VALUES ('eve', 'eve', 2, 0, {false}, {now})",
    ):
        with pytest.raises(Exception, match=r"(?i)unique|not.null|check|constraint"):
            await raw.run(sql)
    if db_url.startswith("sqlite"):  # 0004: stored text in UTC, comparable as text
        assert await raw.run("SELECT published_at FROM video ORDER BY id") == [
            ("2024-01-02 04:00:00+00:00",),
            ("2024-01-02 01:00:00+00:00",),
        ]
    await _migrate(db_url)  # idempotent


def test_the_username_key():
    assert usernames.key("admin") == usernames.key("ADMIN") == usernames.key("ａｄｍｉｎ")
    assert usernames.key("admin") == usernames.key("\u0430dmin") == usernames.key("adrnin")
    assert usernames.key("l0l") == usernames.key("lol")
    assert usernames.key("Pierre  M") == usernames.key("pierre m")
    assert usernames.key("alice") != usernames.key("alicia")
    assert usernames.key("Helios-火リオス") != usernames.key("Helios-火")
    assert usernames.problem("x" * 150) is None and usernames.problem("x" * 151) is not None
