"""``api_token.client``: the User-Agent that signed in, so a user can tell their
sessions apart (app/accounts/sessions.py). A nullable column, added in place."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0031_admin_pretrust")]

    initial = False

    operations = [
        ops.AddField(
            model_name="ApiToken", name="client", field=fields.CharField(null=True, max_length=200)
        ),
    ]
