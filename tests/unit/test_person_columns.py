"""The person columns (people/columns.py): one declaration that the API's person JSON and the
smart-list member export both read."""

from __future__ import annotations

import pytest

from people.api.serializers import PersonSerializer
from people.columns import API_PERSON_FIELDS, EXPORT_PERSON_FIELDS, PERSON_COLUMNS, SORTABLE_PERSON_FIELDS
from people.models import Person
from smartlists.services import MEMBER_FIELDS, MEMBER_ORDERINGS


def test_every_declared_column_is_a_field_of_person_declared_once():
    names = [column.name for column in PERSON_COLUMNS]
    assert len(names) == len(set(names))
    model_fields = {field.name for field in Person._meta.get_fields()}
    assert set(names) <= model_fields


def test_the_api_and_the_export_read_the_declaration_in_their_orders():
    assert PersonSerializer.Meta.fields is API_PERSON_FIELDS
    assert ",".join(API_PERSON_FIELDS) == (
        "id,sf_contact_id,sf_lead_id,email,first_name,last_name,company,title,lead_source,is_deleted_in_salesforce,custom_fields"
    )
    # The export offers the person's own details first, then Salesforce's bookkeeping.
    assert MEMBER_FIELDS is EXPORT_PERSON_FIELDS
    assert ",".join(EXPORT_PERSON_FIELDS) == (
        "id,email,first_name,last_name,company,title,lead_source,phone,sf_contact_id,sf_lead_id,is_deleted_in_salesforce"
    )
    assert "phone" not in API_PERSON_FIELDS and "custom_fields" not in EXPORT_PERSON_FIELDS
    assert MEMBER_ORDERINGS is SORTABLE_PERSON_FIELDS
    assert SORTABLE_PERSON_FIELDS.issubset(EXPORT_PERSON_FIELDS)


@pytest.mark.django_db
def test_each_exported_column_is_one_plain_value_per_person():
    Person.objects.create(email="a@example.com", first_name="A", phone="+1 555")
    (row,) = Person.objects.values_list(*EXPORT_PERSON_FIELDS)
    assert len(row) == len(EXPORT_PERSON_FIELDS)
    assert all(not isinstance(value, dict | list) for value in row)
