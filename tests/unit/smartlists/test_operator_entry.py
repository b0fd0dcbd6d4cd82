"""An operator is one entry (P14): a test-only operator, registered in one place and nowhere
else, is in the catalog, in validation and in the query; taken out, it is gone from all three."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db.models import Q
from django.db.models.lookups import IEndsWith
from rest_framework.test import APIClient

from smartlists.admin_builder import builder_config
from smartlists.evaluate import evaluate
from smartlists.operators import Operator
from smartlists.registry import OPERATORS, OPERATORS_BY_TYPE, register_operator, unregister_operator
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


# Offered by text fields: its label, types, value shape and query, in one entry.
ENDS_WITH = Operator("ends_with", "ends with", "one", ("text",), lambda x, value: Q(IEndsWith(x.expr, value)))


@pytest.fixture
def ends_with() -> Iterator[Operator]:
    register_operator(ENDS_WITH)
    yield ENDS_WITH
    unregister_operator(ENDS_WITH.key)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def name_ends_with(value) -> dict:
    constraint = {"field": "Name", "operator": "ends_with", "value": value}
    return {"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": [constraint]}]}


def test_a_registered_operator_is_in_the_catalog_under_its_types_only(ends_with, viewer, fields):
    body = {e["filter"]: e for e in client_for(viewer).get("/api/v1/filters/").json()}
    constraints = {c["field"]: c for c in body["has_opportunity"]["constraints"]}
    assert constraints["Name"]["operators"][-1] == "ends_with"  # text: after the declared ones
    assert constraints["Champion__c"]["operators"][-1] == "ends_with"  # a custom text field too
    people = {f["field"]: f for f in body["person_field"]["fields"]}
    assert "ends_with" in people["email"]["operators"]
    for other in ("Region__c", "Amount", "CloseDate", "IsWon"):  # picklist, currency, date, boolean
        assert "ends_with" not in constraints[other]["operators"], other
    assert "ends_with" not in body["total_opty_amount"]["operators"]
    # The builder in the admin labels it and draws its input from its value shape.
    assert builder_config(can_save=True, changelist_url="/")["operators"]["ends_with"] == {
        "label": "ends with",
        "value": "one",
    }


def test_a_registered_operator_checks_its_value_and_selects_its_people(ends_with, marketer, typed_people):
    client = client_for(marketer)
    # Names: "Acme Renewal", "acme expansion", "Beta Deal", "", "Gamma <b>Deal</b>", "Delta beta".
    preview = client.post("/api/v1/smart-lists/preview/", name_ends_with("BETA"), format="json")
    assert preview.status_code == 200, preview.json()
    delta = typed_people[5][0]
    assert [person["id"] for person in preview.json()["results"]] == [delta.pk]
    assert preview.json()["count"] == 1
    # The plain evaluation (no stored totals) asks the same query.
    plain = evaluate(name_ends_with("beta"), precomputed=False).people
    assert set(plain.values_list("pk", flat=True)) == {delta.pk}

    not_text = client.post("/api/v1/smart-lists/preview/", name_ends_with(5), format="json")
    assert not_text.status_code == 400
    assert not_text.json() == {
        "filters[0].constraints[0].value": [
            "Name ends with: the value must be a text value of at most 1000 characters"
        ]
    }
    on_a_picklist = name_ends_with("EA")
    on_a_picklist["filters"][0]["constraints"][0]["field"] = "Region__c"
    refused = client.post("/api/v1/smart-lists/preview/", on_a_picklist, format="json")
    assert refused.status_code == 400
    message = refused.json()["filters[0].constraints[0].operator"][0]
    assert message.startswith("'ends_with' is not an operator of picklist fields")


def test_a_person_attribute_takes_a_registered_operator(ends_with, marketer, fields):
    ada = PersonFactory(email="ada@example.org")
    PersonFactory(email="grace@example.com")
    definition = {
        "logic": "all",
        "filters": [{"filter": "person_field", "field": "email", "operator": "ends_with", "value": ".ORG"}],
    }
    preview = client_for(marketer).post("/api/v1/smart-lists/preview/", definition, format="json")
    assert preview.status_code == 200, preview.json()
    assert [person["id"] for person in preview.json()["results"]] == [ada.pk]


def test_an_operator_taken_out_is_gone_from_catalog_and_validation(marketer, viewer, fields):
    declared = {kind: list(keys) for kind, keys in OPERATORS_BY_TYPE.items()}
    register_operator(ENDS_WITH)
    try:
        with pytest.raises(ValueError, match="declared already"):
            register_operator(ENDS_WITH)
    finally:
        unregister_operator("ends_with")
    assert "ends_with" not in OPERATORS
    assert declared == OPERATORS_BY_TYPE
    body = {e["filter"]: e for e in client_for(viewer).get("/api/v1/filters/").json()}
    name = next(c for c in body["has_opportunity"]["constraints"] if c["field"] == "Name")
    assert "ends_with" not in name["operators"]
    refused = client_for(marketer).post("/api/v1/smart-lists/preview/", name_ends_with("beta"), format="json")
    assert refused.status_code == 400 and "filters[0].constraints[0].operator" in refused.json()
