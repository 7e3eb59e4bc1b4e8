"""Moderation (an admin marks a video unsafe, reversibly, every change logged) and
full-text search over videos' title, channel, description and tags, accent- and
case-insensitive:

- PostgreSQL: the ``unaccent`` extension, an immutable wrapper (``unaccent`` itself
  is only stable, and index expressions must be immutable), and a GIN index on
  the ``simple`` configuration's tsvector of the four columns; queries use the same
  expression (app/db/search.py).
- SQLite: an FTS5 table over the same columns with ``remove_diacritics 2``, an
  external-content table on ``video`` kept in sync by triggers (so imports, the
  metadata queue and admin overrides all keep it current), filled here once; tags
  are indexed as words (``json_each``), not as their JSON text.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

PG_FORWARD = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE OR REPLACE FUNCTION sunrank_unaccent(text) RETURNS text
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT;
CREATE OR REPLACE FUNCTION sunrank_video_document(text, text, text, text) RETURNS tsvector
    AS $$ SELECT to_tsvector('simple'::regconfig, sunrank_unaccent(
        coalesce($1, '') || ' ' || coalesce($2, '') || ' ' || coalesce($3, '') || ' '
        || coalesce($4, ''))) $$
    LANGUAGE sql IMMUTABLE PARALLEL SAFE;
CREATE INDEX video_search ON video
    USING GIN (sunrank_video_document(title, uploader, description, tags::text));
"""
PG_BACKWARD = """
DROP INDEX IF EXISTS video_search;
DROP FUNCTION IF EXISTS sunrank_video_document(text, text, text, text);
DROP FUNCTION IF EXISTS sunrank_unaccent(text);
"""

_COLUMNS = "title, uploader, description, tags"


def _tags(row: str) -> str:
    # The tags as words: the JSON column escapes non-ASCII letters (\u00c9), which
    # the tokenizer would index as such.
    return f"(SELECT group_concat(value, ' ') FROM json_each({row}.tags))"


def _values(row: str) -> str:
    return f"{row}.id, {row}.title, {row}.uploader, {row}.description, {_tags(row)}"


SQLITE_FORWARD = f"""
CREATE VIRTUAL TABLE video_fts USING fts5(
    {_COLUMNS}, content='video', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER video_fts_insert AFTER INSERT ON video BEGIN
    INSERT INTO video_fts(rowid, {_COLUMNS}) VALUES ({_values("new")});
END;
CREATE TRIGGER video_fts_delete AFTER DELETE ON video BEGIN
    INSERT INTO video_fts(video_fts, rowid, {_COLUMNS}) VALUES ('delete', {_values("old")});
END;
CREATE TRIGGER video_fts_update AFTER UPDATE OF {_COLUMNS} ON video BEGIN
    INSERT INTO video_fts(video_fts, rowid, {_COLUMNS}) VALUES ('delete', {_values("old")});
    INSERT INTO video_fts(rowid, {_COLUMNS}) VALUES ({_values("new")});
END;
INSERT INTO video_fts(rowid, {_COLUMNS}) SELECT {_values("video")} FROM video;
"""
SQLITE_BACKWARD = """
DROP TRIGGER IF EXISTS video_fts_insert;
DROP TRIGGER IF EXISTS video_fts_delete;
DROP TRIGGER IF EXISTS video_fts_update;
DROP TABLE IF EXISTS video_fts;
"""


def _by_dialect(postgres: str, sqlite: str):
    async def run(apps, schema_editor) -> None:
        sqlite_db = schema_editor.client.capabilities.dialect == "sqlite"
        await schema_editor.client.execute_script(sqlite if sqlite_db else postgres)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0035_account_deactivation")]  # noqa: RUF012

    initial = False

    operations = [  # noqa: RUF012
        ops.CreateModel(
            name="VideoModeration",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "video",
                    fields.OneToOneField(
                        "models.Video",
                        source_field="video_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="moderation",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("reason", fields.CharField(max_length=500)),
                (
                    "moderated_by",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="moderated_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="moderations",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("moderated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "video_moderation", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ModerationLog",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "video",
                    fields.ForeignKeyField(
                        "models.Video",
                        source_field="video_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="moderation_log",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "admin",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="admin_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="moderation_log",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("unsafe", fields.BooleanField()),
                ("reason", fields.CharField(null=True, max_length=500)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "moderation_log", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.RunPython(
            _by_dialect(PG_FORWARD, SQLITE_FORWARD), _by_dialect(PG_BACKWARD, SQLITE_BACKWARD)
        ),
    ]
