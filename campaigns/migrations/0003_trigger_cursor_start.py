"""Start trigger evaluation at the end of the activity log as it is now: the history recorded
before campaigns existed is never read by them."""

from typing import Any

from django.db import migrations
from django.db.models import Max


def cursor_start(apps: Any, schema_editor: Any) -> None:
    activity = apps.get_model("opportunities", "Activity")
    cursor = apps.get_model("campaigns", "TriggerCursor")
    if not cursor.objects.exists():
        cursor.objects.create(last_activity_id=activity.objects.aggregate(top=Max("pk"))["top"] or 0)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_roles"), ("opportunities", "0010_sync_state_unreadable_paths")]

    operations = [migrations.RunPython(cursor_start, migrations.RunPython.noop)]
