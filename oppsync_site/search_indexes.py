"""Trigram indexes for admin search on PostgreSQL, as migration operations.

Django's `icontains` on PostgreSQL compares `UPPER(column::text) LIKE UPPER('%term%')`; a GIN
trigram index on exactly that expression answers it without scanning every row. SQLite has no
such index and keeps scanning (fine at the embedded default's size), so the operations do
nothing there.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.migrations.operations.base import Operation


def trigram_search_indexes(table: str, prefix: str, columns: list[str]) -> list[Operation]:
    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {prefix}_{column}_trgm ON {table} "
                f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
            )

    def drop(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            schema_editor.execute(f"DROP INDEX IF EXISTS {prefix}_{column}_trgm")

    return [TrigramExtension(), migrations.RunPython(create, drop)]
