"""Vouch.imported: a vouch read from a public dataset, whose ``trust_score`` already
counts it (the importer stores that score as the vouchee's pretrust). Such vouches
are kept and exported but not propagated again by the learner (app/datasets/importer.py).

On SQLite AddField is an in-place ``ALTER TABLE … ADD COLUMN``; its undo rebuilds
``vouch``, which no other table references, so nothing cascades.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0010_video_metadata")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Vouch",
            name="imported",
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
