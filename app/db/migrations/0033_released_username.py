"""``released_username``: names of deleted accounts, reserved for a while
(app/accounts/deletion.py). A new table."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0032_session_client")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ReleasedUsername",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("username_key", fields.CharField(unique=True, max_length=1000)),
                ("released_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "released_username", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
