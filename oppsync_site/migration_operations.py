"""Index migrations that keep the sync writing while they run.

A plain CREATE INDEX on PostgreSQL holds a lock that blocks every INSERT and UPDATE of the table
until the index is built: minutes on a table of millions of activities, during which the sync
waits and changes pile up in Salesforce. CREATE INDEX CONCURRENTLY (and DROP INDEX CONCURRENTLY)
let writes go on. PostgreSQL refuses them inside a transaction, so a migration that uses these
operations sets `atomic = False`. SQLite, the embedded default, has neither the keyword nor the
problem (one writer at a time either way) and gets the plain statements.

If a concurrent build is interrupted, PostgreSQL leaves an INVALID index behind under the same
name; `AddIndexOnline` drops such a leftover first, so running `migrate` again finishes the job
instead of failing on "relation already exists". A migration interrupted after one of its builds
finished is not recorded as applied, so `migrate` runs that build again: `AddIndexOnline` keeps a
valid index of that name. (Django drops an index with IF EXISTS, so a drop that already happened
is no error either.)
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


def _online(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


def _index_is_valid(schema_editor: Any, name: str) -> bool | None:
    """Whether the index of that name is valid; None when there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


class _ConcurrentlyOnPostgreSQL:
    """Runs the PostgreSQL CONCURRENTLY operation it is mixed into there, `plain`'s elsewhere."""

    plain: Any  # AddIndex or RemoveIndex

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if not _online(schema_editor):
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if not _online(schema_editor):
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]

    def describe(self) -> str:
        return f"{self.plain.describe(self)} (concurrently on PostgreSQL)"


class AddIndexOnline(_ConcurrentlyOnPostgreSQL, AddIndexConcurrently):
    """AddIndex that does not block writes on PostgreSQL (CONCURRENTLY); plain on SQLite."""

    plain = AddIndex

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        # `sqlmigrate` (collect_sql) prints the statements whatever the database holds now.
        if _online(schema_editor) and not schema_editor.collect_sql:
            valid = _index_is_valid(schema_editor, self.index.name)
            if valid:
                return  # built by an earlier run that was interrupted later
            if valid is False:
                schema_editor.execute(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}"
                )
        super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexOnline(_ConcurrentlyOnPostgreSQL, RemoveIndexConcurrently):
    """RemoveIndex that does not block writes on PostgreSQL (CONCURRENTLY); plain on SQLite."""

    plain = RemoveIndex
