"""The public dataset the refit leader built, for every replica (app/datasets/published.py).

``public_export``: one row per served file (``all.zip``, ``comparisons.csv``), its
bytes, ETag (SHA-256) and when this version was stored. Replicas that do not lead
fetch it when the ETag differs from the file they serve: no shared filesystem.

SQLite keeps one server process, which builds its own files: nothing to create there.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES = """
CREATE TABLE public_export (
    name TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    size_bytes BIGINT NOT NULL,
    data BYTEA NOT NULL
);
"""
POSTGRES_DROP = "DROP TABLE public_export;"


def _postgres_only(script: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "postgres":
            await schema_editor.client.execute_script(script)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0050_replicas")]  # noqa: RUF012

    operations = [  # noqa: RUF012
        ops.RunPython(_postgres_only(POSTGRES), _postgres_only(POSTGRES_DROP)),
    ]
