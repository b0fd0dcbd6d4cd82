"""Per-person facts for smart lists: each person's picklist values and latest Added / Removed
times in the totals row, and `TotalsCoverage`, which says what every row holds. The rows are filled
by a rebuild (the beat task `totals_coverage_ensure`), not here: at a big org it takes minutes.

The new columns are nullable or have a constant default (no table rewrite on PostgreSQL); the
indexes are built CONCURRENTLY there, so the sync keeps writing during the upgrade; hence not
atomic.
"""

from django.db import migrations, models

from oppsync_site.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("opportunities", "0012_smart_list_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="TotalsCoverage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("picklist_fields", models.JSONField(blank=True, default=list)),
                (
                    "activity_times",
                    models.BooleanField(
                        default=False, help_text="last_added_at and last_removed_at are current in every row"
                    ),
                ),
                ("rebuilt_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name_plural": "totals coverage",
            },
        ),
        migrations.AddField(
            model_name="personopportunitytotals",
            name="last_added_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="personopportunitytotals",
            name="last_removed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="personopportunitytotals",
            name="picklist_values",
            field=models.JSONField(blank=True, default=dict),
        ),
        AddIndexOnline(
            model_name="personopportunitytotals",
            index=models.Index(fields=["last_added_at"], name="totals_last_added_idx"),
        ),
        AddIndexOnline(
            model_name="personopportunitytotals",
            index=models.Index(fields=["last_removed_at"], name="totals_last_removed_idx"),
        ),
    ]
