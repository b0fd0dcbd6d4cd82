"""Indexes for smart lists.

- Activity filters (a type, perhaps a changed field, a time window) read covering indexes that
  hold the person, the opportunity and the role, never the table. The new field index replaces
  the old one, whose columns it starts with.
- A partial index holds the deleted opportunities' ids, which those filters exclude.
- Another holds the live roles' opportunity and person: the way from the opportunities a Has
  Opportunity filter selects to their people.

On PostgreSQL the indexes are built and dropped CONCURRENTLY, so the sync keeps writing to these
tables (millions of rows at a big org) while an upgrade builds them; hence not atomic.
"""

from django.db import migrations, models

from oppsync_site.migration_operations import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("opportunities", "0011_custom_field_statistics"),
        ("people", "0003_person_search_trigram"),
    ]

    operations = [
        AddIndexOnline(
            model_name="activity",
            index=models.Index(
                fields=["activity_type", "occurred_at", "person", "opportunity", "role", "is_primary"],
                name="activity_window_idx",
            ),
        ),
        AddIndexOnline(
            model_name="activity",
            index=models.Index(
                fields=["activity_type", "field", "occurred_at", "person", "opportunity"],
                name="activity_field_window_idx",
            ),
        ),
        AddIndexOnline(
            model_name="opportunity",
            index=models.Index(fields=["id"], condition=models.Q(is_deleted=True), name="opp_deleted_idx"),
        ),
        AddIndexOnline(
            model_name="contactrole",
            index=models.Index(
                fields=["opportunity", "person"], condition=models.Q(is_deleted=False), name="role_live_idx"
            ),
        ),
        RemoveIndexOnline(model_name="activity", name="activity_field_idx"),
    ]
