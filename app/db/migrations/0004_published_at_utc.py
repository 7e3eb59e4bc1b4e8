"""``video.published_at`` in UTC on SQLite.

SQLite stores a datetime as the text tortoise gives it, offset included, and
compares that text: ``2024-01-01 23:00:00-05:00`` sorted before ``2024-01-02
01:00:00+00:00`` though it is three hours later. ``addVideo`` now converts to UTC
before writing (and filters convert their bounds); this rewrites the values stored
before with another offset. PostgreSQL stores ``timestamptz`` in UTC already.
"""

from datetime import UTC, datetime

from tortoise import migrations
from tortoise.migrations import operations as ops


def utc_text(stored: str) -> str | None:
    """The same instant as tortoise writes it in UTC, or None if already so."""
    value = datetime.fromisoformat(stored)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset() == UTC.utcoffset(None) and stored.endswith("+00:00"):
        return None
    try:
        converted = value.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 once in UTC: the nearest instant
        converted = (datetime.min if value.year < 5000 else datetime.max).replace(tzinfo=UTC)
    return converted.isoformat(" ")


async def to_utc(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "sqlite":
        return
    rows = await client.execute_query_dict(
        "SELECT id, published_at FROM video WHERE published_at IS NOT NULL"
    )
    for row in rows:
        if (text := utc_text(str(row["published_at"]))) is not None:
            await client.execute_query(
                "UPDATE video SET published_at = ? WHERE id = ?", [text, row["id"]]
            )


async def nothing(apps, schema_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [("models", "0003_username_key")]

    initial = False

    operations = [ops.RunPython(to_utc, nothing)]
