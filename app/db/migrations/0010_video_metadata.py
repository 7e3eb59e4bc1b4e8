"""Video metadata from the source (app/sources): description, tags, availability,
the fetch schedule (fetched at, source, due at, failures, last error) and the
fields an admin locked; title, uploader and language become nullable (null:
unknown), and the empty strings that meant "unknown" become NULL.

On SQLite, tortoise 1.1.9's AlterField rebuilds the table (create, copy, drop,
rename), and dropping ``video`` would cascade to rate-later entries, ratings'
visibility and scores, or fail on comparisons (see 0003). SQLite cannot drop a NOT
NULL in place either, so each column is renamed, re-added nullable, copied and the
old one dropped (``ALTER TABLE … DROP COLUMN`` rewrites rows in place, it does not
drop the table); the AlterField below only records the final field in the
migration state there (and does the work on PostgreSQL, which alters in place).
Tested on both, on populated databases: tests/sources/test_migration.py.
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

NULLABLE = {"title": 500, "uploader": 200, "language": 16}


def _sqlite_nullable(column: str, max_length: int) -> str:
    old = f"{column}_before_0010"
    return f"""
ALTER TABLE video RENAME COLUMN {column} TO {old};
ALTER TABLE video ADD COLUMN {column} VARCHAR({max_length});
UPDATE video SET {column} = {old};
ALTER TABLE video DROP COLUMN {old};
"""


def _sqlite_not_null(column: str, max_length: int) -> str:
    old = f"{column}_before_0010"
    return f"""
ALTER TABLE video RENAME COLUMN {column} TO {old};
ALTER TABLE video ADD COLUMN {column} VARCHAR({max_length}) NOT NULL DEFAULT '';
UPDATE video SET {column} = COALESCE({old}, '');
ALTER TABLE video DROP COLUMN {old};
"""


def _on_sqlite(script: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "sqlite":
            await schema_editor.client.execute_script(script)

    return run


async def empty_to_null(apps, schema_editor) -> None:
    for column in NULLABLE:
        await schema_editor.client.execute_script(
            f"UPDATE video SET {column} = NULL WHERE {column} = ''"
        )


async def null_to_empty(apps, schema_editor) -> None:
    for column in NULLABLE:
        await schema_editor.client.execute_script(
            f"UPDATE video SET {column} = '' WHERE {column} IS NULL"
        )


def _script(sql: str):
    async def run(apps, schema_editor) -> None:
        await schema_editor.client.execute_script(sql)

    return run


# AddField(db_index=True) records the index but creates none (tortoise 1.1.9, both
# dialects): the queue's "what is due" query needs it.
CREATE_INDEX = "CREATE INDEX video_metadata_due_at ON video (metadata_due_at)"
DROP_INDEX = "DROP INDEX video_metadata_due_at"


class AlterFieldExceptOnSqlite(ops.AlterField):
    """AlterField, with the database work skipped on SQLite (see above)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class AddFieldInPlace(ops.AddField):
    """AddField whose undo drops the column in place on SQLite (tortoise 1.1.9's
    RemoveField rebuilds the table there, which cascades, see above)."""

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect == "sqlite":
            await state_editor.client.execute_script(f"ALTER TABLE video DROP COLUMN {self.name}")
        else:
            await super().database_backward(app_label, old_state, new_state, state_editor)


def _json_field() -> fields.JSONField:
    return fields.JSONField(
        null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0004_published_at_utc")]

    initial = False

    operations = [
        AddFieldInPlace(model_name="Video", name="description", field=fields.TextField(null=True)),
        AddFieldInPlace(model_name="Video", name="tags", field=_json_field()),
        AddFieldInPlace(
            model_name="Video",
            name="availability",
            field=fields.CharField(null=True, max_length=16),
        ),
        AddFieldInPlace(
            model_name="Video", name="metadata_fetched_at", field=fields.DatetimeField(null=True)
        ),
        AddFieldInPlace(
            model_name="Video",
            name="metadata_source",
            field=fields.CharField(null=True, max_length=16),
        ),
        AddFieldInPlace(
            model_name="Video",
            name="metadata_due_at",
            field=fields.DatetimeField(null=True, db_index=True),
        ),
        AddFieldInPlace(
            model_name="Video",
            name="metadata_failures",
            field=fields.IntField(default=0, db_default=0),
        ),
        AddFieldInPlace(
            model_name="Video",
            name="metadata_error",
            field=fields.CharField(null=True, max_length=500),
        ),
        AddFieldInPlace(model_name="Video", name="locked_fields", field=_json_field()),
        *(
            op
            for column, max_length in NULLABLE.items()
            for op in (
                ops.RunPython(
                    _on_sqlite(_sqlite_nullable(column, max_length)),
                    _on_sqlite(_sqlite_not_null(column, max_length)),
                ),
                AlterFieldExceptOnSqlite(
                    model_name="Video",
                    name=column,
                    field=fields.CharField(null=True, max_length=max_length),
                ),
            )
        ),
        ops.RunPython(empty_to_null, null_to_empty),
        ops.RunPython(_script(CREATE_INDEX), _script(DROP_INDEX)),
    ]
