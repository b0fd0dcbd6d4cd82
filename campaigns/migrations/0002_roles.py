"""Give the roles their campaign permissions (oppsync_site.roles)."""

from typing import Any

from django.db import migrations

from oppsync_site.roles import roles_apply


def apply_roles(apps: Any, schema_editor: Any) -> None:
    roles_apply(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_campaign"),
        ("smartlists", "0002_roles"),
        ("oppsync_site", "0004_api_token"),  # the API token permissions, re-applied here too
    ]

    operations = [migrations.RunPython(apply_roles, migrations.RunPython.noop)]
