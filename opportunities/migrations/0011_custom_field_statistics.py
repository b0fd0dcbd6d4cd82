"""Planner statistics for the Opportunity custom fields already synced (PostgreSQL only);
new ones get theirs when describe first shows them (opportunities/planner_statistics.py)."""

from django.db import migrations


def create_statistics(apps, schema_editor):
    from opportunities.planner_statistics import custom_field_statistics_ensure

    definitions = apps.get_model("opportunities", "FieldDefinition").objects.filter(
        sobject="Opportunity", is_custom=True, is_active=True
    )
    custom_field_statistics_ensure(definitions.values_list("api_name", "field_type"), analyze=True)


class Migration(migrations.Migration):
    dependencies = [("opportunities", "0010_sync_state_unreadable_paths")]

    operations = [migrations.RunPython(create_statistics, migrations.RunPython.noop)]
