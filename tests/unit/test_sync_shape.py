"""P7 point 10: a shape that shows the four objects once. Each object has one declarative spec
(table, columns, applier, what "gone" does, formula refresh), its applier lives in a module of its
own, the engine dispatches through the specs only, and the API reads sync status through a
selector, never the engine."""

from __future__ import annotations

import ast
import inspect

from opportunities.sync import engine
from opportunities.sync.objects import SPECS, SYNCED_OBJECTS

OBJECT_NAMES = ("Contact", "Lead", "Opportunity", "OpportunityContactRole")


def test_a_shape_that_shows_the_four_objects_once_one_spec_each_in_contract_order():
    assert SYNCED_OBJECTS == OBJECT_NAMES
    modules = {name: SPECS[name].applier.__module__ for name in OBJECT_NAMES}
    assert modules == {
        "Contact": "opportunities.sync.apply.people",
        "Lead": "opportunities.sync.apply.people",
        "Opportunity": "opportunities.sync.apply.opportunity",
        "OpportunityContactRole": "opportunities.sync.apply.contact_role",
    }
    for spec in SPECS.values():
        assert callable(spec.mark_gone) and callable(spec.formulas_refresh) and spec.model is not None


def test_a_shape_that_shows_the_four_objects_once_the_engine_names_no_object():
    tree = ast.parse(inspect.getsource(engine))
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not literals & set(OBJECT_NAMES), "the engine dispatches on an object name instead of its spec"


def test_a_shape_that_shows_the_four_objects_once_the_api_reads_status_through_a_selector():
    from opportunities.api import views

    source = inspect.getsource(views)
    assert "sync.engine" not in source and "from ..sync import engine" not in source
    assert "sync_status" in source  # opportunities.selectors.sync_status
