"""The event log is append-only in the database itself: UPDATE and DELETE on
``event`` fail, whoever runs them (a script, a console, a bug)."""

from tortoise import migrations
from tortoise.migrations import operations as ops

MESSAGE = "the event log is append-only"

SQLITE = f"""
CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
"""
SQLITE_DROP = "DROP TRIGGER event_no_update; DROP TRIGGER event_no_delete;"

POSTGRES = f"""
CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$;
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON event
FOR EACH ROW EXECUTE FUNCTION event_append_only();
"""
POSTGRES_DROP = "DROP TRIGGER event_append_only ON event; DROP FUNCTION event_append_only();"


def _by_dialect(sqlite: str, postgres: str):
    async def run(apps, schema_editor) -> None:
        dialect = schema_editor.client.capabilities.dialect
        if dialect not in ("sqlite", "postgres"):
            raise NotImplementedError(f"no append-only trigger for {dialect}")
        await schema_editor.client.execute_script(sqlite if dialect == "sqlite" else postgres)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [
        ops.RunPython(_by_dialect(SQLITE, POSTGRES), _by_dialect(SQLITE_DROP, POSTGRES_DROP)),
    ]
