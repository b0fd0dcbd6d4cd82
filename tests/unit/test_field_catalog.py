"""P7 point 8: a describe (about once a minute) rewrites only the definitions that changed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opportunities.models import FieldDefinition
from opportunities.salesforce.records import FieldInfo, ObjectDescription
from opportunities.sync.fields import field_definitions_sync

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _description(**labels: str) -> ObjectDescription:
    fields = {name: FieldInfo(name=name, label=label, type="string") for name, label in labels.items()}
    return ObjectDescription(name="Opportunity", fields=fields)


def test_no_giant_rewrites_an_unchanged_describe_rewrites_no_definition():
    description = _description(**{f"Field{n}__c": f"Field {n}" for n in range(300)})
    assert len(field_definitions_sync(description, now=T0)) == 300
    later = T0 + dt.timedelta(minutes=1)
    with CaptureQueriesContext(connection) as queries:
        assert field_definitions_sync(description, now=later) == []
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(writes) <= 2  # last seen for all of them at once; nothing to deactivate
    assert set(FieldDefinition.objects.values_list("last_seen_at", flat=True)) == {later}
    relabelled = dataclasses.replace(description.fields["Field7__c"], label="Renamed")
    description.fields["Field7__c"] = relabelled
    with CaptureQueriesContext(connection) as queries:
        field_definitions_sync(description, now=later)
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(writes) <= 3 and FieldDefinition.objects.get(api_name="Field7__c").label == "Renamed"
