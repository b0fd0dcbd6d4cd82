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
finished is not recorded as applied, so `migrate` runs that build again: a valid index of that
name on that table is kept. Both hold for the build a rollback does (`RemoveIndexOnline`
backwards). Django drops an index with IF EXISTS, so a drop that already happened is no error
either. SQLite's plain statements have no such guard.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


def _online(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


def _ready_to_build(schema_editor: Any, state: Any, app_label: str, model_name: str, name: str) -> bool:
    """Whether the build of index `name` on the model's table (as `state` has it) should run:
    always on SQLite and under `sqlmigrate` (collect_sql: it prints the statements whatever the
    database holds now); on PostgreSQL not when an earlier, interrupted run of the migration
    built it already (a valid index of that name on that table), and after dropping an invalid
    leftover. A valid index of that name on another table is an error, never taken for this one."""
    if not _online(schema_editor) or schema_editor.collect_sql:
        return True
    table = state.apps.get_model(app_label, model_name)._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, t.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    if row is None:
        return True
    valid, indexed_table = bool(row[0]), row[1]
    if not valid:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")
        return True
    if indexed_table != table:
        raise RuntimeError(f"index {name} exists on table {indexed_table}, not on {table}")
    return False


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
        if _ready_to_build(schema_editor, to_state, app_label, self.model_name, self.index.name):
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexOnline(_ConcurrentlyOnPostgreSQL, RemoveIndexConcurrently):
    """RemoveIndex that does not block writes on PostgreSQL (CONCURRENTLY); plain on SQLite."""

    plain = RemoveIndex

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        # Backwards builds the removed index again: an interrupted rollback is finished the same way.
        if _ready_to_build(schema_editor, to_state, app_label, self.model_name, self.name):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
