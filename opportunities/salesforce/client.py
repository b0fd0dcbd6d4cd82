"""The Salesforce boundary: the only module that imports simple-salesforce.

It logs in (auth.py), reuses the token until the org says it expired (401 INVALID_SESSION_ID) and
then logs in again, retries 5xx, 406, 420, 429 and dropped connections with exponential backoff,
counts every API call and reads `Sforce-Limit-Info` after each one, and turns Salesforce's errors
into our own exceptions. It returns plain records (dicts keyed by API name, relationship fields
flattened to `Account.Name`).

Reference: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import functools
import io
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError as LibrarySalesforceError,
)
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceOperationError,
)

from .auth import SalesforceConfig, Token, http_session, token_request
from .exceptions import (
    SalesforceError,
    SalesforceInvalidField,
    SalesforceQueryTimeout,
    SalesforceQuotaExceeded,
    SalesforceRequestError,
    SalesforceTransientError,
)
from .records import FieldInfo, ObjectDescription

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({406, 420, 429, 500, 502, 503, 504})
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
# How far the org-time estimate moves with the whole-second Date header it is read from.
ORG_CLOCK_JITTER = dt.timedelta(seconds=1)


@dataclass
class QueryPage:
    """One page of a query: its records, the total over all pages and the next page's URL."""

    records: list[dict[str, Any]]
    total_size: int
    next_url: str | None


@dataclass
class DeletedResult:
    deleted: list[tuple[str, str]]  # (id, deletedDate)
    earliest_date_available: str
    latest_date_covered: str


@dataclass
class CompositeResult:
    status: int
    body: Any

    @property
    def not_modified(self) -> bool:
        """304: the resource has not changed since the subrequest's If-Modified-Since (no body)."""
        return self.status == 304

    def raise_for_error(self) -> None:
        if self.status >= 300:
            raise error_from_body(self.status, self.body)


def error_from_body(status: int, body: Any) -> SalesforceError:
    """Our exception for a Salesforce error response (a JSON array of {message, errorCode})."""
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code = str(first.get("errorCode", ""))
    message = str(first.get("message", "")).strip() or f"HTTP {status}"
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return SalesforceQuotaExceeded(
            f"The org's daily API limit is used up ({message}); the sync resumes later."
        )
    if code == "INVALID_FIELD":
        return SalesforceInvalidField(message.splitlines()[-1])
    if code == "QUERY_TIMEOUT":
        return SalesforceQueryTimeout(message)
    if status in RETRYABLE_STATUS:
        return SalesforceTransientError(f"Salesforce answered HTTP {status} {code}: {message}".strip())
    return SalesforceRequestError(f"Salesforce refused a request: {code or status}: {message}", code, status)


def bulk_job_error(what: str, error: SalesforceOperationError) -> SalesforceError:
    """Our exception for a Bulk API 2.0 job that ended Failed or Aborted (simple-salesforce raises
    "Job failure. Response content: <errorMessage>"). A job that timed out names QUERY_TIMEOUT in
    its errorMessage, as Bulk API 1.0's stateMessage does (clients match on the code): the window
    is too wide, so the caller splits it. Any other failure is a refusal the REST API may not share."""
    message = str(error).removeprefix("Job failure. Response content: ").strip()
    if "QUERY_TIMEOUT" in message:
        return SalesforceQueryTimeout(f"{what}: the Bulk job timed out ({message})")
    return SalesforceRequestError(f"{what}: the Bulk job failed ({message})", "BULK_JOB_FAILED")


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Drop `attributes`; `{"Account": {"Name": "Acme"}}` becomes `{"Account.Name": "Acme"}`."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "attributes" in value:
            for inner_key, inner_value in value.items():
                if inner_key != "attributes":
                    flat[f"{key}.{inner_key}"] = inner_value
        else:
            flat[key] = value
    return flat


def _composite_post(sf: Salesforce, *, body: dict[str, Any]) -> Any:
    return sf.restful("composite", method="POST", json=body)


def http_date(moment: dt.datetime) -> str:
    """`Tue, 14 May 2024 08:30:05 GMT` (RFC 1123, whole seconds: the fraction is dropped, so the
    date is never later than `moment`), what If-Modified-Since takes."""
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


COMPOSITE_SUBREQUESTS = 25
COMPOSITE_QUERIES = 5
_QUERY_URL = re.compile(r"/(query|queryAll)(/|\?|$)")


def composite_batches(subrequests: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split subrequests into Composite calls within Salesforce's limits (25, of which 5 queries)."""
    batches: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    queries = 0
    for ref, url in subrequests:
        is_query = bool(_QUERY_URL.search(url))
        if len(current) == COMPOSITE_SUBREQUESTS or (is_query and queries == COMPOSITE_QUERIES):
            batches.append(current)
            current, queries = [], 0
        current.append((ref, url))
        queries += is_query
    if current:
        batches.append(current)
    return batches


def page_from_body(body: dict[str, Any]) -> QueryPage:
    return QueryPage(
        records=[flatten(r) for r in body.get("records", [])],
        total_size=int(body.get("totalSize", 0)),
        next_url=body.get("nextRecordsUrl") if not body.get("done", True) else None,
    )


class SalesforceClient:
    def __init__(
        self,
        config: SalesforceConfig,
        *,
        max_attempts: int = 4,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.session = http_session(config)
        self.session.hooks["response"].append(self._on_response)
        self.calls = 0
        self.api_usage: tuple[int, int] | None = None
        # Salesforce's clock minus ours, from the Date header of the latest response.
        self.clock_offset: dt.timedelta | None = None
        self._latest_org_now: dt.datetime | None = None
        # Called before each further page of a query: the sync's quota guard stops long reads.
        self.before_next_page: Callable[[], None] | None = None
        self._token: Token | None = None
        self._sf: Salesforce | None = None

    # --- bookkeeping ------------------------------------------------------------------------------
    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every REST or Bulk request counts against the org's daily limit; the token call does not.
        Every response's Date header tells how far the org's clock is from ours."""
        received = dt.datetime.now(dt.UTC)
        try:
            org_time = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError):
            org_time = None
        if org_time is not None and org_time.tzinfo is not None:
            # Date has whole seconds: the truncation is half a second on average.
            self.clock_offset = org_time + dt.timedelta(seconds=0.5) - received
        if "/services/data/" in response.url:
            self.calls += 1
            match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
            if match:
                self.api_usage = (int(match.group(1)), int(match.group(2)))

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._token = token_request(self.config, self.session)
            self._sf = Salesforce(
                instance_url=self._token.instance_url,
                session_id=self._token.access_token,
                session=self.session,
                version=self.config.api_version,
                parse_float=Decimal,
            )
        return self._sf

    def _call(self, what: str, function: Callable[[Salesforce], T]) -> T:
        """Run one call with re-login on an expired session and backoff on transient errors."""
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return function(self.sf)
            except SalesforceExpiredSession:
                if relogged:
                    raise SalesforceRequestError(
                        f"{what}: the org rejected a fresh session (INVALID_SESSION_ID).",
                        "INVALID_SESSION_ID",
                        401,
                    ) from None
                logger.info("Salesforce session expired; logging in again")
                self._sf = None
                relogged = True
                attempt -= 1
                continue
            except LibrarySalesforceError as error:
                mapped = error_from_body(error.status, error.content)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                ValueError,
            ) as error:
                mapped = SalesforceTransientError(
                    f"{what}: connection to Salesforce failed ({type(error).__name__})."
                )
            except SalesforceTransientError as error:  # from the login
                mapped = error
            if not isinstance(mapped, SalesforceTransientError) or attempt >= self.max_attempts:
                raise mapped
            delay = self.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random())
            logger.warning("%s failed (%s); retry %d in %.1fs", what, mapped, attempt, delay)
            self.sleep(delay)

    # --- the calls --------------------------------------------------------------------------------
    def _path(self, path: str) -> str:
        return f"/services/data/v{self.config.api_version}/{path}"

    def describe(self, sobject: str) -> ObjectDescription:
        body = self._call(f"describe {sobject}", lambda sf: sf.restful(f"sobjects/{sobject}/describe"))
        return description_from_body(sobject, body or {})

    def query_url(self, soql: str, *, include_deleted: bool = True) -> str:
        resource = "queryAll" if include_deleted else "query"
        return self._path(f"{resource}/?q={urllib.parse.quote_plus(soql)}")

    def describe_url(self, sobject: str) -> str:
        return self._path(f"sobjects/{sobject}/describe")

    def deleted_url(self, sobject: str, start: str, end: str) -> str:
        params = urllib.parse.urlencode({"start": start, "end": end})
        return self._path(f"sobjects/{sobject}/deleted/?{params}")

    def composite(
        self, subrequests: list[tuple[str, str]], *, modified_since: dict[str, dt.datetime] | None = None
    ) -> dict[str, CompositeResult]:
        """GET subrequests (referenceId, url) in as few Composite calls as Salesforce allows: at
        most 25 subrequests and 5 queries per call (more is refused with
        INVALID_COMPOSITE_REQUEST), so a longer list is split, in order. A subrequest named in
        `modified_since` carries If-Modified-Since (a time on the org's clock) in its httpHeaders
        and may answer 304 (`CompositeResult.not_modified`); such a subrequest is not collated,
        which only matters to record writes, never to these GETs.

        Reference: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite.htm
        """
        since = modified_since or {}
        results: dict[str, CompositeResult] = {}
        for batch in composite_batches(subrequests):
            body = {
                "allOrNone": False,
                "compositeRequest": [
                    {
                        "method": "GET",
                        "url": url,
                        "referenceId": ref,
                        **(
                            {"httpHeaders": {"If-Modified-Since": http_date(since[ref])}}
                            if ref in since
                            else {}
                        ),
                    }
                    for ref, url in batch
                ],
            }
            result = self._call("composite", functools.partial(_composite_post, body=body)) or {}
            results.update(
                (item["referenceId"], CompositeResult(int(item["httpStatusCode"]), item["body"]))
                for item in result["compositeResponse"]
            )
        return results

    def org_now(self) -> dt.datetime:
        """Salesforce's current time: ours corrected by the offset the last response showed
        (logging in first when no response has come yet)."""
        if self.clock_offset is None:
            _ = self.sf  # the token response carries a Date header too
        estimate = dt.datetime.now(dt.UTC) + (self.clock_offset or dt.timedelta(0))
        # The offset is re-read from each response's whole-second Date header, so the estimate
        # jitters by up to a second and could set a window's end (and a watermark) a moment
        # before the last one. Within that jitter the later of the two stands; a clock stepped
        # back further (a corrected host clock) is followed, so no window ends in the org's future.
        latest = self._latest_org_now
        if latest is not None and dt.timedelta(0) < latest - estimate < ORG_CLOCK_JITTER:
            return latest
        self._latest_org_now = estimate
        return estimate

    def query(self, soql: str, *, include_deleted: bool = True, batch_size: int | None = None) -> QueryPage:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        body = self._call(
            "query",
            lambda sf: sf.query(
                soql, include_deleted=include_deleted, **({"headers": headers} if headers else {})
            ),
        )
        return page_from_body(body)

    def query_more(self, next_url: str) -> QueryPage:
        body = self._call("query page", lambda sf: sf.query_more(next_url, identifier_is_url=True))
        return page_from_body(body)

    def query_all(self, soql: str, *, include_deleted: bool = True) -> Iterator[list[dict[str, Any]]]:
        """Pages of records, following nextRecordsUrl (never LIMIT/OFFSET)."""
        return self.pages_from(self.query(soql, include_deleted=include_deleted))

    def pages_from(self, page: QueryPage) -> Iterator[list[dict[str, Any]]]:
        """This page's records, then those of every page after it."""
        yield page.records
        while page.next_url:
            if self.before_next_page is not None:
                self.before_next_page()
            page = self.query_more(page.next_url)
            yield page.records

    def deleted(self, sobject: str, start: str, end: str) -> DeletedResult:
        body = self._call(
            f"getDeleted {sobject}",
            lambda sf: sf.restful(f"sobjects/{sobject}/deleted/", params={"start": start, "end": end}),
        )
        return deleted_from_body(body or {})

    def limits(self) -> dict[str, Any]:
        return dict(self._call("limits", lambda sf: sf.limits()))

    def bulk_query(
        self, sobject: str, soql: str, *, include_deleted: bool = True
    ) -> Iterator[list[dict[str, str]]]:
        """Bulk API 2.0 query job; yields pages of CSV rows (strings, empty for null) as they
        download, so the caller can write one page while the next one travels.

        Reference: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm
        """

        def start(sf: Salesforce) -> Iterator[str]:
            handler = getattr(sf.bulk2, sobject)
            method = handler.query_all if include_deleted else handler.query
            pages = iter(method(soql, max_records=50000, wait=0.5))
            first = next(pages, None)  # creates the job, waits for it, reads the first page
            return iter(()) if first is None else _chain(first, pages)

        what = f"bulk query {sobject}"
        try:
            pages = self._call(what, start)
        except SalesforceOperationError as error:  # the job failed while we waited for it
            raise bulk_job_error(what, error) from error
        while True:
            try:
                page = next(pages, None)
            except LibrarySalesforceError as error:
                raise error_from_body(error.status, error.content) from error
            except SalesforceOperationError as error:
                raise bulk_job_error(what, error) from error
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as error:
                raise SalesforceTransientError(
                    f"bulk query {sobject}: connection to Salesforce failed ({type(error).__name__})."
                ) from error
            if page is None:
                return
            yield list(csv.DictReader(io.StringIO(page)))


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def description_from_body(sobject: str, body: dict[str, Any]) -> ObjectDescription:
    fields = {raw["name"]: FieldInfo.from_describe(raw) for raw in body.get("fields", [])}
    return ObjectDescription(name=sobject, fields=fields)


def deleted_from_body(body: dict[str, Any]) -> DeletedResult:
    return DeletedResult(
        deleted=[(d["id"], d["deletedDate"]) for d in body.get("deletedRecords", [])],
        earliest_date_available=str(body.get("earliestDateAvailable") or ""),
        latest_date_covered=str(body.get("latestDateCovered") or ""),
    )
