"""``user.username_key``: usernames unique by case, width and look-alike letters
(app/db/usernames.py).

Added nullable, filled from the existing usernames, then made NOT NULL and UNIQUE.
Existing accounts whose names already share a key all stay: the one created first
keeps the plain key, each later one gets it with a suffix no name can produce (a
tab and its id), and the migration logs them. New names matching any of them are
refused.

On SQLite, tortoise 1.1.9's AlterField rebuilds the table (create, copy, drop,
rename), and dropping the old ``user`` table cascades to every row that references
it: comparisons, tokens and vouches were lost when tried. So on SQLite the column
is added in place (ALTER TABLE ADD COLUMN), UNIQUE comes from a unique index and
NOT NULL from two triggers; the AlterField below only records the final field in
the migration state (and does the work on PostgreSQL, which alters in place).
Tested on both, on populated databases: tests/api/test_usernames.py.
"""

import logging

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from app.db import usernames

log = logging.getLogger("sunrank.migrations")


def grandfathered_key(key: str, user_id: int) -> str:
    return f"{key}\t{user_id}"  # a tab is a control character: never in a name's key


async def fill_keys(apps, schema_editor) -> None:
    client = schema_editor.client
    rows = await client.execute_query_dict('SELECT id, username FROM "user" ORDER BY id')
    first_holder: dict[str, str] = {}
    for row in rows:
        key = usernames.key(row["username"])
        if key in first_holder:
            log.warning(
                "usernames %r and %r look alike; both kept (%r keeps the plain key)",
                first_holder[key], row["username"], first_holder[key],
            )  # fmt: skip
            key = grandfathered_key(key, row["id"])
        else:
            first_holder[key] = row["username"]
        placeholder = "$1" if client.capabilities.dialect == "postgres" else "?"
        other = "$2" if client.capabilities.dialect == "postgres" else "?"
        await client.execute_query(
            f'UPDATE "user" SET username_key = {placeholder} WHERE id = {other}', [key, row["id"]]
        )


SQLITE_CONSTRAINTS = """
CREATE UNIQUE INDEX user_username_key_uniq ON "user" (username_key);
CREATE TRIGGER user_username_key_insert BEFORE INSERT ON "user"
WHEN NEW.username_key IS NULL
BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: user.username_key'); END;
CREATE TRIGGER user_username_key_update BEFORE UPDATE OF username_key ON "user"
WHEN NEW.username_key IS NULL
BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: user.username_key'); END;
"""
SQLITE_DROP = """
DROP TRIGGER user_username_key_update; DROP TRIGGER user_username_key_insert;
DROP INDEX user_username_key_uniq;
"""


def _on_sqlite(script: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "sqlite":
            await schema_editor.client.execute_script(script)

    return run


async def nothing(apps, schema_editor) -> None:
    return None


class AlterFieldExceptOnSqlite(ops.AlterField):
    """AlterField, with the database work skipped on SQLite (see above)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("models", "0002_event_append_only")]

    initial = False

    operations = [
        ops.AddField(
            model_name="User",
            name="username_key",
            field=fields.CharField(null=True, max_length=1000),
        ),
        ops.RunPython(fill_keys, nothing),
        ops.RunPython(_on_sqlite(SQLITE_CONSTRAINTS), _on_sqlite(SQLITE_DROP)),
        AlterFieldExceptOnSqlite(
            model_name="User",
            name="username_key",
            field=fields.CharField(unique=True, max_length=1000),
        ),
    ]
