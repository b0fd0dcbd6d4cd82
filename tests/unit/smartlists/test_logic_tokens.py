"""The advanced-logic rule reads as a marketer reads it: an operator glued to a number is one
unknown word on either side, and a space pasted from a document is a space."""

from __future__ import annotations

import pytest

from smartlists import logic
from smartlists.evaluate import evaluate
from smartlists.logic import LogicError, Rule, parse_logic


@pytest.mark.parametrize(
    ("rule", "word"), [("1 and2", "and2"), ("1 or2", "or2"), ("2and 3", "2and"), ("1 AND2", "AND2")]
)
def test_an_operator_glued_to_a_number_is_refused_on_either_side(rule, word):
    with pytest.raises(LogicError, match=f"unexpected '{word}' at position"):
        parse_logic(rule, 3)


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\t", "  "])
def test_any_unicode_space_separates(space):
    assert parse_logic(f"1{space}and{space}(2 or 3)", 3) == Rule(
        op="and",
        items=(Rule(number=1), Rule(op="or", items=(Rule(number=2), Rule(number=3)))),
    )


@pytest.mark.django_db
def test_the_rule_is_parsed_once_and_evaluation_combines_by_the_checked_one(monkeypatch):
    parsers = []

    class CountedParser(logic._Parser):
        def __init__(self, *args, **kwargs):
            parsers.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(logic, "_Parser", CountedParser)
    evaluation = evaluate({"logic": "1 or (2 and 3)", "filters": [{"filter": "has_opportunity"}] * 3})
    assert len(parsers) == 1  # by validation; evaluation reads the checked definition's rule
    assert evaluation.checked.rule == Rule(
        op="or",
        items=(Rule(number=1), Rule(op="and", items=(Rule(number=2), Rule(number=3)))),
    )
    assert evaluate({"logic": "ANY", "filters": [{"filter": "has_opportunity"}] * 2}).checked.rule == Rule(
        op="or", items=(Rule(number=1), Rule(number=2))
    )
