"""The SOQL the cycle sends: a window's query and the `Id IN (...)` queries of a re-read by id."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from ...salesforce.client import SalesforceClient
from ...salesforce.records import FieldInfo, soql_datetime
from ..fields import select_list

# Ids go into SOQL literals: only well-formed Salesforce ids get there.
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15,18}")
# Ids per `Id IN (...)` query (reconcile's fetch, the retry of set-aside records); fewer when the
# select list is wide, so the query's URL stays under Salesforce's URI limit (`ids_soql_chunks`).
IDS_PER_QUERY = 200
# The whole URI plus headers must stay under 16,384 bytes or Salesforce answers 414 URI Too Long
# (salesforce-api.md §2); the rest is left for the headers and the instance's host name.
URI_BUDGET = 12_000


def window_soql(
    sobject: str,
    fields: dict[str, FieldInfo],
    lower: dt.datetime,
    upper: dt.datetime,
    *,
    ordered: bool = True,
) -> str:
    """The query of one window. REST reads it in SystemModstamp order (ties by Id); a Bulk API
    2.0 job (`ordered=False`) gets no ORDER BY: Bulk 2.0 does not support it and it turns PK
    chunking off, so exactly the big first loads that use Bulk would run slow and time out
    (Bulk API 2.0 Developer Guide, "Understanding Bulk API 2.0 Query" and "Troubleshooting Query
    Timeouts"). The order does not matter for correctness: the watermark moves only after the
    whole window is applied, and each row is applied by its own SystemModstamp."""
    order = " ORDER BY SystemModstamp ASC, Id ASC" if ordered else ""
    return (
        f"SELECT {', '.join(select_list(sobject, fields))} FROM {sobject} "
        f"WHERE SystemModstamp > {soql_datetime(lower)} AND SystemModstamp <= {soql_datetime(upper)}"
        f"{order}"
    )


def ids_soql_chunks(
    client: SalesforceClient, sobject: str, fields: dict[str, FieldInfo], ids: list[str]
) -> Iterator[str]:
    """`SELECT <fields> FROM sobject WHERE Id IN (...)` over `ids`, as few queries as the URI limit
    allows (at most IDS_PER_QUERY ids each): 200 quoted ids plus a wide select list would pass the
    16,384 bytes Salesforce accepts. Ids must be well-formed (`SALESFORCE_ID`): they go into
    literals."""
    head = f"SELECT {', '.join(select_list(sobject, fields))} FROM {sobject} WHERE Id IN ()"
    per_id = len(client.query_url("'001000000000000AAA', ")) - len(client.query_url(""))
    room = URI_BUDGET - len(client.query_url(head))
    size = max(1, min(IDS_PER_QUERY, room // per_id))
    for start in range(0, len(ids), size):
        quoted = ", ".join(f"'{i}'" for i in ids[start : start + size])
        yield head[:-1] + quoted + ")"
