"""Equal server processes on one PostgreSQL database (app/engine/cluster.py).

- ``event_notify``: inserting events sends ``NOTIFY sunrank_events``. PostgreSQL
  delivers notifications when (and only if) the transaction commits, and folds
  identical ones of a transaction into one (an import of 100k events wakes each
  listener once), so a process listening wakes exactly when new events are visible,
  whoever wrote them (a server, an import, a console), with no change to the writers.
  The learner reads the events themselves from the table after its watermark.
- ``learner_checkpoint``: the fitted states the refit leader publishes (the bytes of a
  checkpoint directory, app/learner/checkpoint.py, as a tar) with the event watermark
  they include; the other processes adopt the newest one, and a new process starts
  from it (no shared filesystem). Inserting one notifies ``sunrank_checkpoints``.

SQLite keeps one server process (app/engine/leader.py): nothing to create there.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES = """
CREATE FUNCTION event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('sunrank_events', ''); RETURN NULL; END $$;
CREATE TRIGGER event_notify AFTER INSERT ON event
FOR EACH STATEMENT EXECUTE FUNCTION event_notify();

CREATE TABLE learner_checkpoint (
    id BIGSERIAL PRIMARY KEY,
    watermark BIGINT NOT NULL,
    hparams_digest TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    size_bytes BIGINT NOT NULL,
    data BYTEA NOT NULL
);
CREATE FUNCTION learner_checkpoint_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('sunrank_checkpoints', NEW.id::text); RETURN NULL; END $$;
CREATE TRIGGER learner_checkpoint_notify AFTER INSERT ON learner_checkpoint
FOR EACH ROW EXECUTE FUNCTION learner_checkpoint_notify();
"""
POSTGRES_DROP = """
DROP TRIGGER event_notify ON event; DROP FUNCTION event_notify();
DROP TABLE learner_checkpoint; DROP FUNCTION learner_checkpoint_notify();
"""


def _postgres_only(script: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "postgres":
            await schema_editor.client.execute_script(script)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0020_moderation_search")]  # noqa: RUF012

    operations = [  # noqa: RUF012
        ops.RunPython(_postgres_only(POSTGRES), _postgres_only(POSTGRES_DROP)),
    ]
