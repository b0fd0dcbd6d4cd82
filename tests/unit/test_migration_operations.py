"""Index migrations keep the sync writing on PostgreSQL: CREATE/DROP INDEX CONCURRENTLY there, the
plain statements on SQLite, and an interrupted concurrent build is finished by migrating again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_save, pre_save
from django.db.utils import IntegrityError
from factory.django import mute_signals

from tests.factories import ContactRoleFactory, OpportunityFactory

pytestmark = pytest.mark.django_db(transaction=True)
# What these tests check is PostgreSQL's alone (CONCURRENTLY, INVALID indexes left by an
# interrupted build, the catalog); SQLite gets the plain statements, checked above them. They run
# in the PostgreSQL pass.
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="CONCURRENTLY is PostgreSQL's")


def _index_statements(app: str, migration: str) -> list[str]:
    out = StringIO()
    call_command("sqlmigrate", app, migration, stdout=out)
    return [line for line in out.getvalue().splitlines() if " INDEX " in line and not line.startswith("--")]


@pytest.mark.parametrize(
    ("migration", "names", "expected"),
    # 0012: four created, one dropped; 0013: the latest times (SQLite also re-creates the table's
    # other indexes when it remakes the table for the new columns); 0018: a covering index
    # replaces one.
    [("0012", "", 5), ("0013", "totals_last_", 2), ("0018", "", 2)],
)
def test_the_smart_list_indexes_are_built_concurrently_on_postgresql_only(migration, names, expected):
    statements = [s for s in _index_statements("opportunities", migration) if names in s]
    assert len(statements) == expected
    online = [s for s in statements if "INDEX CONCURRENTLY" in s]
    if connection.vendor == "postgresql":
        assert online == statements
    else:
        assert online == []


def _index_state(name: str) -> tuple[bool, bool] | None:
    """(valid, unique) of an index, None when there is none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


@postgresql_only
def test_migrating_again_finishes_an_interrupted_concurrent_index_build():
    call_command("migrate", "opportunities", "0011", verbosity=0)
    try:
        assert _index_state("role_live_idx") is None
        # The totals' receivers would write columns that 0011 does not have yet.
        with mute_signals(pre_save, post_save):
            opportunity = OpportunityFactory()
            ContactRoleFactory.create_batch(2, opportunity=opportunity)
        # A concurrent build that fails half-way leaves an INVALID index under the name: here a
        # uniqueness the two roles violate, as a cancelled upgrade would.
        with pytest.raises(IntegrityError), connection.cursor() as cursor:
            cursor.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY role_live_idx ON opportunities_contactrole (opportunity_id)"
            )
        assert _index_state("role_live_idx") == (False, True)

        call_command("migrate", "opportunities", "0012", verbosity=0)

        assert _index_state("role_live_idx") == (True, False)
        assert _index_state("activity_window_idx") == (True, False)
    finally:
        call_command("migrate", verbosity=0)


_COVER_INDEX = (
    "CREATE INDEX CONCURRENTLY role_live_cover_idx ON opportunities_contactrole "
    "(opportunity_id, person_id) INCLUDE (is_primary, role) WHERE NOT is_deleted"
)
_LIVE_INDEX = (
    "CREATE INDEX CONCURRENTLY role_live_idx ON opportunities_contactrole "
    "(opportunity_id, person_id) WHERE NOT is_deleted"
)


@postgresql_only
@pytest.mark.parametrize(
    ("start", "built", "target", "kept", "gone"),
    [
        # Forwards: 0018 builds the covering index, then drops the old one.
        ("0017", _COVER_INDEX, "0018", "role_live_cover_idx", "role_live_idx"),
        # Backwards: rolling 0018 back builds the old index again, then drops the covering one.
        ("0018", _LIVE_INDEX, "0017", "role_live_idx", "role_live_cover_idx"),
    ],
)
def test_migrating_again_keeps_an_index_an_interrupted_run_had_already_built(
    start, built, target, kept, gone
):
    """A non-atomic migration interrupted after its build finished is not recorded as applied
    (or as rolled back): the next `migrate` runs the build again and keeps the valid index
    instead of failing on "already exists"."""
    call_command("migrate", "opportunities", start, verbosity=0)
    try:
        assert _index_state(kept) is None
        with connection.cursor() as cursor:  # what the interrupted run had built
            cursor.execute(built)

        call_command("migrate", "opportunities", target, verbosity=0)

        assert _index_state(kept) == (True, False)
        assert _index_state(gone) is None
    finally:
        call_command("migrate", verbosity=0)


@postgresql_only
def test_an_index_of_the_same_name_on_another_table_is_an_error_not_taken_for_the_new_one():
    call_command("migrate", "opportunities", "0017", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE INDEX role_live_cover_idx ON opportunities_opportunity (id)")
        with pytest.raises(RuntimeError, match="exists on table opportunities_opportunity"):
            call_command("migrate", "opportunities", "0018", verbosity=0)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS role_live_cover_idx")
        call_command("migrate", verbosity=0)
