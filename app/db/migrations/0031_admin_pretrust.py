"""``admin_pretrust``: an admin's pretrust kept apart from the effective
``user.pretrust`` once a trusted email domain's grant combines with it
(app/accounts/domains.py). A new table: nothing of ``user`` is altered."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0030_accounts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AdminPretrust",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.OneToOneField("models.User", source_field="user_id", db_constraint=True, to_field="id", related_name="admin_pretrust", on_delete=OnDelete.CASCADE)),
                ("value", fields.FloatField()),
            ],
            options={"table": "admin_pretrust", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
