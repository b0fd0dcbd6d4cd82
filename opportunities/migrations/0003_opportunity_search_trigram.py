"""Trigram indexes for the opportunity search on PostgreSQL (name, account name); see
people/migrations/0003 for why the indexed expression is `UPPER(column::text)`."""

from typing import Any

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

COLUMNS = ["name", "account_name"]


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS opportunity_{column}_trgm ON opportunities_opportunity "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS opportunity_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("opportunities", "0002_syncobjectrun_expected_count_and_more")]

    operations = [TrigramExtension(), migrations.RunPython(create, drop)]
