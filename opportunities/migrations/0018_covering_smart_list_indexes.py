"""Covering indexes for two kinds of smart-list filter, each replacing the index it extends.

- Opportunity was Updated with a previous or new value constraint ("StageName changed to Closed
  Won"): the field index also holds the values (INCLUDE), so the filter reads the index alone.
- Has Opportunity with the role's own constraints (Role, Is Primary): the live roles' (opportunity,
  person) index also holds them.

INCLUDE is PostgreSQL's; SQLite builds the same indexes without the included columns. On
PostgreSQL the indexes are built and dropped CONCURRENTLY, so the sync keeps writing while an
upgrade builds them (about 15 s each at a million opportunities); hence not atomic.
"""

from django.db import migrations, models

from oppsync_site.migration_operations import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("opportunities", "0017_change_stream_gone_hints"),
    ]

    operations = [
        AddIndexOnline(
            model_name="activity",
            index=models.Index(
                fields=["activity_type", "field", "occurred_at", "person", "opportunity"],
                include=["new_value", "previous_value"],
                name="activity_field_values_idx",
            ),
        ),
        RemoveIndexOnline(model_name="activity", name="activity_field_window_idx"),
        AddIndexOnline(
            model_name="contactrole",
            index=models.Index(
                fields=["opportunity", "person"],
                include=["is_primary", "role"],
                condition=models.Q(is_deleted=False),
                name="role_live_cover_idx",
            ),
        ),
        RemoveIndexOnline(model_name="contactrole", name="role_live_idx"),
    ]
