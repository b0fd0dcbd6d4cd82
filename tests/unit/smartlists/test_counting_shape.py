"""Which filters the counting query keeps as EXISTS (PostgreSQL joins them) and which it turns
into sets of people: a filter ANDed with everything else joins, one under an OR is a set."""

from __future__ import annotations

import pytest

from smartlists.evaluate import conjunctive_numbers
from smartlists.logic import logic_rule


@pytest.mark.parametrize(
    ("logic", "count", "joined"),
    [
        ("all", 1, {1}),
        ("any", 1, {1}),
        ("all", 3, {1, 2, 3}),
        ("any", 3, set()),
        ("1 and (2 or 3)", 3, {1}),
        ("(1 and 2) and (3 or 4)", 4, {1, 2}),
        ("1 or (2 and 3)", 3, set()),
        ("(1 or 2) and (3 or 4)", 4, set()),
    ],
)
def test_only_filters_anded_with_everything_else_are_joined(logic, count, joined):
    assert conjunctive_numbers(logic_rule(logic, count)) == joined


@pytest.mark.django_db
def test_a_count_with_sets_gathers_without_the_leader_and_sets_everything_back(fields):
    """Only PostgreSQL's counting statement runs with `COUNTING_WORK_MEM` and, when it holds
    sets of people, without the leader's participation; the connection's settings are back
    after it. SQLite touches no setting."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from smartlists.evaluate import smart_list_people
    from tests.factories import ContactRoleFactory, PersonFactory

    ContactRoleFactory(person=PersonFactory())
    PersonFactory(lead_source="Web")
    with_a_set = {
        "logic": "1 or 2",
        "filters": [
            {
                "filter": "has_opportunity",
                "constraints": [{"field": "StageName", "operator": "is_not_empty"}],
            },
            {"filter": "person_field", "field": "lead_source", "operator": "is", "value": ["Web"]},
        ],
    }
    if connection.vendor == "sqlite":  # the members' own query counts; no setting is touched
        with CaptureQueriesContext(connection) as counted:
            assert smart_list_people(with_a_set).count() == 2
        assert [q["sql"] for q in counted if "set_config" in q["sql"]] == []
        return

    def settings() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('work_mem'), current_setting('parallel_leader_participation')"
            )
            return cursor.fetchone()

    before = settings()
    joined_only = {"logic": "all", "filters": with_a_set["filters"][:1]}
    for definition, leaderless in ((with_a_set, True), (joined_only, False)):
        with CaptureQueriesContext(connection) as counted:
            assert smart_list_people(definition).count() == (2 if leaderless else 1)
        statements = [q["sql"] for q in counted]
        count_at = next(i for i, sql in enumerate(statements) if sql.startswith("SELECT COUNT"))
        set_off = [i for i, sql in enumerate(statements) if "'parallel_leader_participation', 'off'" in sql]
        assert bool(set_off) == leaderless, definition
        assert all(i < count_at for i in set_off), "set before the count, not after"
        assert settings() == before
    # A connection that has it off already keeps it off (and its own work_mem).
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('parallel_leader_participation', 'off', true)")
        cursor.execute("SELECT set_config('work_mem', '300MB', true)")
    assert smart_list_people(with_a_set).count() == 2
    assert settings() == ("300MB", "off")


@pytest.mark.django_db
def test_a_list_of_person_conditions_inside_another_is_no_set(fields):
    """Member of a list that holds only person conditions is a condition on the person: its
    neighbours keep their EXISTS and the count keeps its leader."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from smartlists.evaluate import evaluate
    from smartlists.models import SmartList
    from tests.factories import ContactRoleFactory, PersonFactory

    web = {"filter": "person_field", "field": "lead_source", "operator": "is", "value": ["Web"]}
    named = {"filter": "person_field", "field": "last_name", "operator": "starts_with", "value": "A"}
    inner = SmartList.objects.create(name="web", definition={"logic": "all", "filters": [web, named]})
    staged = {
        "filter": "has_opportunity",
        "constraints": [{"field": "StageName", "operator": "is_not_empty"}],
    }
    listed = {"filter": "member_of_smart_list", "operator": "is", "value": [inner.pk]}
    ContactRoleFactory(person=PersonFactory(lead_source="Web", last_name="Adams"))
    ContactRoleFactory(person=PersonFactory(lead_source="Web", last_name="Baker"))
    PersonFactory(lead_source="Web", last_name="Avery")
    definition = {"logic": "all", "filters": [staged, listed]}
    with CaptureQueriesContext(connection) as counted:
        assert evaluate(definition).people.count() == 1
    assert evaluate(definition, precomputed=False).people.count() == 1
    if connection.vendor == "postgresql":
        count_sql = next(q["sql"] for q in counted if q["sql"].startswith("SELECT COUNT"))
        assert "EXISTS" in count_sql
        assert not any("parallel_leader_participation', 'off'" in q["sql"] for q in counted)


def _scans(plan: dict) -> list[tuple[str, str, str]]:
    """(node type, table, index) of every scan in an EXPLAIN (FORMAT JSON) plan."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"], plan.get("Index Name", "")))
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


@pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction
def test_role_constraints_are_read_from_a_covering_index(fields):
    """Has Opportunity with the role's own constraints can be counted without reading a row of
    the role table: the live roles' index holds every column it asks for (an index-only scan is
    possible; with table scans ruled out and the tables vacuumed, the planner takes it)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from smartlists.evaluate import evaluate
    from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory

    table, index = "opportunities_contactrole", "role_live_cover_idx"
    negotiation = OpportunityFactory(stage_name="Negotiation")
    ContactRoleFactory(
        person=PersonFactory(), opportunity=negotiation, role="Decision Maker", is_primary=True
    )
    ContactRoleFactory(person=PersonFactory(), opportunity=negotiation, role="Evaluator", is_primary=False)
    decision_maker = {
        "filter": "has_opportunity",
        "constraints": [
            {"field": "Role", "operator": "is", "value": ["Decision Maker"]},
            {"field": "IsPrimary", "operator": "is_true"},
            {"field": "StageName", "operator": "is", "value": ["Negotiation"]},
        ],
    }
    # Under an OR, so that the count reads the filter as a set of people.
    nobody = {"filter": "person_field", "field": "last_name", "operator": "is", "value": ["Nobody"]}
    definition = {"logic": "any", "filters": [decision_maker, nobody]}
    with CaptureQueriesContext(connection) as counted:
        assert evaluate(definition).people.count() == 1
    assert evaluate(definition, precomputed=False).people.count() == 1
    if connection.vendor != "postgresql":
        return  # INCLUDE is PostgreSQL's; SQLite builds the index without those columns
    count_sql = next(q["sql"] for q in counted if q["sql"].startswith("SELECT COUNT"))
    with connection.cursor() as cursor:  # as autovacuum leaves a live org: index-only scans need it
        for analysed in ("people_person", "opportunities_opportunity", table):
            cursor.execute(f"VACUUM ANALYZE {analysed}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {count_sql}")
        explained = cursor.fetchone()[0]  # psycopg decodes the JSON
    scans = [scan for scan in _scans(explained[0]["Plan"]) if scan[1] == table]
    assert scans, f"the count does not read {table}"
    assert all(scan == ("Index Only Scan", table, index) for scan in scans), scans
