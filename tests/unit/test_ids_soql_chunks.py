"""`Id IN (...)` queries (the retry of set-aside records, reconcile's fetch) stay under
Salesforce's URI limit: 16,384 bytes for the whole URI plus headers (salesforce-api.md §2)."""

from __future__ import annotations

from opportunities.salesforce.auth import SalesforceConfig
from opportunities.salesforce.client import SalesforceClient
from opportunities.salesforce.records import FieldInfo
from opportunities.sync.engine import IDS_PER_QUERY, ids_soql_chunks

URI_LIMIT = 16_384


def _client() -> SalesforceClient:
    return SalesforceClient(SalesforceConfig(login_url="https://login.example.com", client_id="x"))


def _ids(count: int) -> list[str]:
    return [f"006{n:015d}" for n in range(count)]


def test_a_narrow_select_list_reads_200_ids_a_query():
    fields = {name: FieldInfo(name, name, "string") for name in ("Name", "StageName")}
    queries = list(ids_soql_chunks(_client(), "Opportunity", fields, _ids(450)))
    assert [q.count("'006") for q in queries] == [IDS_PER_QUERY, IDS_PER_QUERY, 50]


def test_a_wide_select_list_reads_fewer_ids_a_query_and_every_url_fits():
    """200 custom fields of 40 characters: 200 ids would pass the limit; every id is still asked."""
    client = _client()
    names = [f"Very_Long_Custom_Field_Name_Number_{n:03d}__c" for n in range(200)]
    fields = {name: FieldInfo(name, name, "string") for name in names}
    ids = _ids(450)
    queries = list(ids_soql_chunks(client, "Opportunity", fields, ids))
    assert len(queries) > 3
    assert all(len(client.query_url(q)) < URI_LIMIT - 2000 for q in queries)
    asked = [i for q in queries for i in ids if f"'{i}'" in q]
    assert sorted(asked) == ids
