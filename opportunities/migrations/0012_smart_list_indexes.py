"""Indexes for smart lists.

- Activity filters (a type, perhaps a changed field, a time window) read covering indexes that
  hold the person, the opportunity and the role, never the table. The new field index replaces
  the old one, whose columns it starts with.
- A partial index holds the deleted opportunities' ids, which those filters exclude.
- Another holds the live roles' opportunity and person: the way from the opportunities a Has
  Opportunity filter selects to their people.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("opportunities", "0011_custom_field_statistics"),
        ("people", "0003_person_search_trigram"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                fields=["activity_type", "occurred_at", "person", "opportunity", "role", "is_primary"],
                name="activity_window_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                fields=["activity_type", "field", "occurred_at", "person", "opportunity"],
                name="activity_field_window_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(fields=["id"], condition=models.Q(is_deleted=True), name="opp_deleted_idx"),
        ),
        migrations.AddIndex(
            model_name="contactrole",
            index=models.Index(
                fields=["opportunity", "person"], condition=models.Q(is_deleted=False), name="role_live_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="activity", name="activity_field_idx"),
    ]
