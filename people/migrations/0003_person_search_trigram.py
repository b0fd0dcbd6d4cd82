"""Trigram indexes for the people search on PostgreSQL (name, email, company).

Django's `icontains` on PostgreSQL compares `UPPER(column::text) LIKE UPPER('%term%')`; a GIN
trigram index on exactly that expression answers it without scanning every row. SQLite has no
such index and keeps scanning (fine at the embedded default's size).
"""

from typing import Any

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

COLUMNS = ["first_name", "last_name", "email", "company"]


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS person_{column}_trgm ON people_person "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS person_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("people", "0002_person_person_list_idx")]

    operations = [TrigramExtension(), migrations.RunPython(create, drop)]
