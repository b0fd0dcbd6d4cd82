"""A covering index for Has Opportunity with the role's own constraints (Role, Is Primary): the
live roles' (opportunity, person) index also holds them (INCLUDE), so such a filter reads no role
row. It replaces the index it extends.

INCLUDE is PostgreSQL's; SQLite builds the same index without the included columns. On
PostgreSQL the index is built and the old one dropped CONCURRENTLY, so the sync keeps writing
while an upgrade builds it (about 10 s at 2.5 million roles); hence not atomic.
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
