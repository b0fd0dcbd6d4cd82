"""The org's time comes from whole-second Date headers, so its estimate jitters: within that
jitter a window never ends before the last one did, and a clock stepped back further is followed
(no window may end in the org's future)."""

from __future__ import annotations

import datetime as dt

from opportunities.salesforce.auth import SalesforceConfig
from opportunities.salesforce.client import ORG_CLOCK_JITTER, SalesforceClient


def _client() -> SalesforceClient:
    client = SalesforceClient(SalesforceConfig(login_url="https://login.example.com", client_id="x"))
    client.clock_offset = dt.timedelta(0)
    return client


def test_a_smaller_offset_within_the_jitter_keeps_the_later_time():
    client = _client()
    first = client.org_now()
    client.clock_offset = -ORG_CLOCK_JITTER / 2
    assert client.org_now() >= first


def test_a_clock_stepped_back_further_is_followed():
    client = _client()
    first = client.org_now()
    client.clock_offset = -dt.timedelta(minutes=5)
    assert client.org_now() < first - dt.timedelta(minutes=4)
