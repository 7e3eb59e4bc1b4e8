"""``account_deactivation``: accounts an admin deactivated
(app/accounts/deactivation.py). A new table."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0034_user_settings")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AccountDeactivation",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.OneToOneField("models.User", source_field="user_id", db_constraint=True, to_field="id", related_name="deactivation", on_delete=OnDelete.CASCADE)),
                ("deactivated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("by", fields.ForeignKeyField("models.User", source_field="by_id", null=True, db_constraint=True, to_field="id", related_name="deactivations", on_delete=OnDelete.SET_NULL)),
                ("reason", fields.CharField(null=True, max_length=500)),
            ],
            options={"table": "account_deactivation", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
