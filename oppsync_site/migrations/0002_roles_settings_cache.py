"""Create the roles of contract §2b, the settings row and the cache table the locks use."""

from typing import Any

from django.core.management import call_command
from django.db import migrations

from oppsync_site.roles import roles_apply


def create_roles(apps: Any, schema_editor: Any) -> None:
    roles_apply(apps)


def create_settings_row(apps: Any, schema_editor: Any) -> None:
    settings_model = apps.get_model("oppsync_site", "SubscriptionSettings")
    settings_model.objects.get_or_create(pk=1)


def create_cache_table(apps: Any, schema_editor: Any) -> None:
    # Only the database cache needs a table; the command is a no-op for other backends.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("oppsync_site", "0001_initial"),
        ("people", "0001_initial"),
        ("opportunities", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_settings_row, migrations.RunPython.noop),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
