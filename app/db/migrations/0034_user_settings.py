"""``user_settings``: one validated settings document per account
(app/accounts/preferences.py). A new table."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0033_released_username")]

    initial = False

    operations = [
        ops.CreateModel(
            name="UserSettings",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.OneToOneField("models.User", source_field="user_id", db_constraint=True, to_field="id", related_name="settings", on_delete=OnDelete.CASCADE)),
                ("document", fields.JSONField(encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "user_settings", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
