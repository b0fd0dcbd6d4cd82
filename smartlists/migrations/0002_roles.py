"""Give the roles their smart-list permissions (oppsync_site.roles)."""

from typing import Any

from django.db import migrations

from oppsync_site.roles import roles_apply


def apply_roles(apps: Any, schema_editor: Any) -> None:
    roles_apply(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("smartlists", "0001_smart_list"),
        ("oppsync_site", "0003_subscriptionsettings_time_zone"),
    ]

    operations = [migrations.RunPython(apply_roles, migrations.RunPython.noop)]
