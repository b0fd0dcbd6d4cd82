"""The emulator's HTTP application: Salesforce's REST API, its OAuth token endpoint, and a control
API under `/__emulator__/` for tests, the demo and benchmarks (salesforce-api.md §6).

Every `/services/data/vNN.N/...` response carries `Sforce-Limit-Info: api-usage=used/max`; every
error body is a JSON array; a composite request counts as one call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import soql
from .generator import generate_org
from .ids import canonical_id
from .pubsub import DEFAULT_KEEPALIVE_SECONDS, PubSubService
from .query import MAX_BATCH, MIN_BATCH, PreparedQuery, QueryEngine
from .sales_team import SalesTeam
from .schema import OBJECT_NAMES, address_value, describe_global_entry, describe_object
from .store import INTEGRATION_USER_ID, ORG_ID, RecordError, Store, minute_floor, table
from .timeutil import ORG_CLOCK_OFFSET, format_datetime, org_now, parse_datetime

logger = logging.getLogger("salesforce_emulator")

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class EmulatorConfig:
    data_dir: Path
    host: str = "localhost"
    port: int = 8443
    client_id: str = "oppsync-demo-client"
    client_secret: str = "oppsync-demo-secret"  # noqa: S105  # the emulator's own demo credentials
    username: str = "integration@oppsync.example"
    # The username-password flow: the user's password followed by their security token.
    password: str = "oppsync-demo-password"  # noqa: S105  # the emulator's own demo user
    security_token: str = "DEMOSECURITYTOKEN"  # noqa: S105  # the emulator's own demo user
    jwt_public_key_file: Path | None = None
    session_seconds: float = 7200.0
    # The control API (`/__emulator__/`) answers other machines too: only for a trusted network.
    control_from_anywhere: bool = False
    # The Pub/Sub API's keepalive period (salesforce-api.md §5.1: within 270 s).
    pubsub_keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS

    @property
    def instance_url(self) -> str:
        return f"https://{self.host}" if self.port == 443 else f"https://{self.host}:{self.port}"


@dataclass
class InjectedError:
    status: int
    error_code: str | None
    message: str
    times: int
    path_contains: str = ""
    # A composite subrequest's error (inside a 200 composite response) instead of the call's.
    in_composite: bool = False


@dataclass
class Faults:
    """What the control API asked the org to do wrong, and how many times."""

    errors: list[InjectedError] = field(default_factory=list)
    slow_seconds: float = 0.0
    slow_times: int = 0
    drop_times: int = 0
    drop_path_contains: str = ""
    query_timeout_days: float | None = None  # REST queries and Bulk jobs alike
    bulk_query_timeout_days: float | None = None  # Bulk jobs only (their REST twin still answers)
    page_size: int | None = None
    bulk_in_progress_polls: int = 0

    def take_error(self, path: str, *, in_composite: bool = False) -> InjectedError | None:
        for error in self.errors:
            if error.times > 0 and error.in_composite == in_composite and error.path_contains in path:
                error.times -= 1
                return error
        return None


@dataclass
class BulkJob:
    id: str
    operation: str
    prepared: PreparedQuery
    version: str
    created: str
    polls_left: int
    state: str = "UploadComplete"
    # Why the job ends Failed instead of JobComplete once its polls are over (a fault), or "".
    failure: str = ""

    def info(self) -> dict[str, Any]:
        error = {"errorMessage": self.failure} if self.state == "Failed" else {}
        return {
            **error,
            "id": self.id,
            "operation": self.operation,
            "object": self.prepared.sobject,
            "createdById": INTEGRATION_USER_ID,
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Query",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": self.prepared.total if self.state == "JobComplete" else 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }


class _RollBack(Exception):
    """Leaves an allOrNone composite request's transaction, rolling it back."""


class UnresolvedReference(Exception):
    """A composite `@{ref.path}` whose subrequest failed, never ran, or has no such value."""


ROLLED_BACK_MESSAGE = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
_REFERENCE = re.compile(r"@\{([A-Za-z][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


def resolve_references(value: Any, outcomes: dict[str, tuple[int, Any]], *, in_url: bool) -> Any:
    """Composite's `@{referenceId.field}` / `@{referenceId.records[0].Id}` in a URL or a body,
    replaced by the value of an earlier subrequest's response. A string that is exactly one
    reference takes the value itself (a number stays a number); otherwise its text. Salesforce's
    wording for an unresolvable reference is not documented; the code is PROCESSING_HALTED, as for
    a dependent subrequest that is not executed."""
    if isinstance(value, dict):
        return {k: resolve_references(v, outcomes, in_url=in_url) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, outcomes, in_url=in_url) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def lookup(match: re.Match[str]) -> Any:
        reference, path = match.group(1), match.group(2)
        missing = UnresolvedReference(
            f"Invalid reference specified. No value for {reference}{path} found in {reference}."
        )
        if reference not in outcomes or outcomes[reference][0] >= 400:
            raise missing
        current = outcomes[reference][1]
        for key, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            if key and isinstance(current, dict) and key in current:
                current = current[key]
            elif index and isinstance(current, list) and int(index) < len(current):
                current = current[int(index)]
            else:
                raise missing
        if current is None or isinstance(current, (dict, list)):
            raise missing
        return current

    whole = _REFERENCE.fullmatch(value)
    if whole and not in_url:
        return lookup(whole)

    def text(match: re.Match[str]) -> str:
        found = lookup(match)
        rendered = ("true" if found else "false") if isinstance(found, bool) else str(found)
        return urllib.parse.quote(rendered, safe="") if in_url else rendered

    return _REFERENCE.sub(text, value)


class SalesforceError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


RestResult = tuple[int, Any, dict[str, str]]  # status, body (JSON-able, or str for CSV), headers


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config.data_dir / "org.sqlite3")
        self.engine = QueryEngine(self.store)
        self.faults = Faults()
        self.bulk_jobs: dict[str, BulkJob] = {}
        self.sales_team = SalesTeam(self.store)
        self.sales_team_rate = 0.0
        self._sales_task: asyncio.Task[None] | None = None
        self.session_seconds = config.session_seconds
        self.jwt_public_key = config.jwt_public_key_file.read_bytes() if config.jwt_public_key_file else None
        self.pubsub = PubSubService(self.store, config.instance_url, config.pubsub_keepalive_seconds)

    # --- OAuth ------------------------------------------------------------------------------------
    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type", "")
        if grant_type == "client_credentials":
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            if authorization.startswith("Basic "):
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            if client_id != self.config.client_id or client_secret != self.config.client_secret:
                return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        elif grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if not self._jwt_ok(form.get("assertion", "")):
                return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        elif grant_type in ("refresh_token", "password"):
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            if authorization.startswith("Basic "):
                client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            if client_id != self.config.client_id or client_secret != self.config.client_secret:
                return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            if grant_type == "refresh_token":
                tokens = self.store.meta_get("refresh_tokens", {})
                if tokens.get(form.get("refresh_token", "")) != client_id:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "expired access/refresh token",
                    }
            elif form.get("username") != self.config.username or form.get("password") != (
                self.config.password + self.config.security_token
            ):
                return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        self.store.session_add(token, time.time() + self.session_seconds)
        issued = str(int(time.time() * 1000))
        identity = f"{self.config.instance_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        # The OAuth documentation: "Base64-encoded HMAC-SHA256 signature signed with the client_secret
        # containing the concatenated ID and issued_at value"; clients (django-salesforce) check it.
        signature = hmac.new(self.config.client_secret.encode(), (identity + issued).encode(), hashlib.sha256)
        return 200, {
            "access_token": token,
            "instance_url": self.config.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": base64.b64encode(signature.digest()).decode(),
            "scope": "api",
        }

    def refresh_token_mint(self, client_id: str) -> str:
        """What the web-server flow would have given an admin who approved the connected app."""
        if client_id != self.config.client_id:
            raise RecordError("INVALID_CLIENT", f"no connected app with client_id {client_id!r}")
        token = f"5Aep861{secrets.token_urlsafe(60)}"
        tokens = self.store.meta_get("refresh_tokens", {})
        self.store.meta_set("refresh_tokens", {**tokens, token: client_id})
        return token

    def refresh_token_revoke(self, token: str) -> bool:
        tokens = self.store.meta_get("refresh_tokens", {})
        if token not in tokens:
            return False
        self.store.meta_set("refresh_tokens", {k: v for k, v in tokens.items() if k != token})
        return True

    def _jwt_ok(self, assertion: str) -> bool:
        if self.jwt_public_key is None:
            return False
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == self.config.client_id and claims.get("sub") == self.config.username)

    # --- REST -------------------------------------------------------------------------------------
    def rest(
        self, method: str, version: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any
    ) -> RestResult:
        """One REST request (the composite resource calls this for each subrequest)."""
        # changeOrigin of the change events its writes publish (§5), with the client's name when sent.
        client = re.search(r"client=([^,;]+)", headers.get("sforce-call-options", ""))
        origin = f"com/salesforce/api/rest/{version}" + (f";client={client.group(1)}" if client else "")
        try:
            with self.store.acting(origin):
                return self._route(method, version, path.strip("/"), params, headers, body)
        except soql.SoqlError as error:
            return 400, [{"message": error.message, "errorCode": error.error_code}], {}
        except RecordError as error:
            return error.status, [{"message": error.message, "errorCode": error.error_code, "fields": []}], {}
        except SalesforceError as error:
            return error.status, [{"message": error.message, "errorCode": error.error_code}], {}

    def _route(
        self, method: str, version: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any
    ) -> RestResult:
        parts = path.split("/") if path else []
        head = parts[0] if parts else ""
        if method == "GET" and not parts:
            # The version's resource index, as Salesforce lists it (the resources this org serves).
            base = f"/services/data/v{version}"
            names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
            return 200, {name: f"{base}/{name}" for name in names}, {}
        if method == "GET" and parts == ["limits", "recordCount"]:
            return 200, {"sObjects": self._record_counts(params.get("sObjects"))}, {}
        if method == "GET" and head in ("query", "queryAll"):
            return self._query(head == "queryAll", parts[1:], params, headers, version)
        if head == "sobjects":
            return self._sobjects(method, version, parts[1:], params, body)
        if method == "GET" and head == "limits":
            used, maximum = self.store.api_usage()
            delivered, delivery_max = self.store.events.deliveries()
            return (
                200,
                {
                    "DailyApiRequests": {"Max": maximum, "Remaining": max(maximum - used, 0)},
                    "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self.bulk_jobs)},
                    "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                    "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                    "DailyDeliveredPlatformEvents": {
                        "Max": delivery_max,
                        "Remaining": max(delivery_max - delivered, 0),
                    },
                },
                {},
            )
        if method == "POST" and head == "composite" and len(parts) == 1:
            return self._composite(version, body)
        if head == "jobs" and len(parts) >= 2 and parts[1] == "query":
            return self._bulk(method, version, parts[2:], params, body)
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")

    def _record_counts(self, wanted: str | None) -> list[dict[str, Any]]:
        """`limits/recordCount`: approximate counts per object; names the org does not have are
        left out, as Salesforce does (its documentation: "ignored and not returned")."""
        names = [n.strip() for n in wanted.split(",")] if wanted else list(OBJECT_NAMES)
        known = {name.lower(): name for name in OBJECT_NAMES}
        counts = []
        for name in names:
            sobject = known.get(name.lower())
            if sobject is not None:
                counts.append({"count": self.store.count(sobject), "name": sobject})
        return counts

    def _batch_size(self, headers: dict[str, str]) -> int:
        if self.faults.page_size:
            return self.faults.page_size
        options = headers.get("sforce-query-options", "")
        match = re.search(r"batchSize=(\d+)", options)
        if match:
            return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))
        return MAX_BATCH

    def _query(
        self,
        include_deleted: bool,
        rest: list[str],
        params: dict[str, str],
        headers: dict[str, str],
        version: str,
    ) -> RestResult:
        if rest and rest[0]:
            locator, _, offset = rest[0].rpartition("-")
            if not locator or not offset.isdigit():
                raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return 200, self.engine.page(locator, int(offset), version), {}
        text = params.get("q")
        if not text:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string must be provided.")
        self._check_query_timeout(text)
        return (
            200,
            self.engine.start(
                text, include_deleted=include_deleted, batch_size=self._batch_size(headers), version=version
            ),
            {},
        )

    def _check_query_timeout(self, text: str) -> None:
        if self._times_out(text, self.faults.query_timeout_days):
            raise SalesforceError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")

    @staticmethod
    def _times_out(text: str, days: float | None) -> bool:
        """Whether the query's SystemModstamp window (all of time when unbounded) is wider than
        `days` (the fault; None: nothing times out)."""
        if days is None:
            return False
        lower, upper = soql.modstamp_bounds(soql.parse(text).where)
        start = parse_datetime(lower) if lower else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        end = parse_datetime(upper) if upper else org_now()
        return end - start > dt.timedelta(days=days)

    def _bulk_failure(self, text: str) -> str:
        """Why a Bulk job on this query fails (a timeout fault), or "". A timed-out job ends
        Failed with the timeout in its errorMessage: the job was accepted, the query ran too long.
        Bulk API 1.0 reports it as "...QUERY_TIMEOUT: Your query request was running for too
        long." in the batch's stateMessage, which clients (Singer's tap-salesforce) match on the
        code; Bulk 2.0's exact wording is undocumented (salesforce-api.md section 2.8)."""
        faults = self.faults
        if self._times_out(text, faults.query_timeout_days) or self._times_out(
            text, faults.bulk_query_timeout_days
        ):
            return "QUERY_TIMEOUT: Your query request was running for too long."
        return ""

    def _sobjects(
        self, method: str, version: str, parts: list[str], params: dict[str, str], body: Any
    ) -> RestResult:
        if not parts or not parts[0]:
            return (
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [describe_global_entry(name, version) for name in OBJECT_NAMES],
                },
                {},
            )
        sobject = next((name for name in OBJECT_NAMES if name.lower() == parts[0].lower()), None)
        if sobject is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        rest = [p for p in parts[1:] if p]
        if not rest:
            if method == "POST":
                record_id = self.store.create(sobject, dict(body or {}))
                return 201, {"id": record_id, "success": True, "errors": []}, {}
            return 200, {"objectDescribe": describe_global_entry(sobject, version), "recentItems": []}, {}
        if rest == ["describe"]:
            return 200, describe_object(sobject, version, self.store.visible_fields(sobject)), {}
        if rest[0] in ("updated", "deleted") and len(rest) == 1:
            return self._replication(sobject, rest[0], params)
        # A 15-character id, or an 18-character one in another letter case, names the same record.
        record_id = canonical_id(rest[0]) or rest[0]
        if method == "GET":
            record = self.store.get(sobject, record_id)
            if record is None or not self._visible(sobject, record_id):
                raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
            out: dict[str, Any] = {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}",
                }
            }
            out.update(
                {
                    spec.name: address_value(spec, record)
                    if spec.type == "address"
                    else record.get(spec.name)
                    for spec in self.store.visible_fields(sobject)
                }
            )
            return 200, out, {}
        if method == "PATCH":
            self.store.update(sobject, record_id, dict(body or {}))
            return 204, None, {}
        if method == "DELETE":
            self.store.delete(sobject, record_id)
            return 204, None, {}
        raise SalesforceError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE"
        )

    def _visible(self, sobject: str, record_id: str) -> bool:
        row = self.store.db.execute(
            f"SELECT visible FROM {table(sobject)} WHERE id = ?", (record_id,)
        ).fetchone()
        return bool(row and row[0])

    def _replication(self, sobject: str, kind: str, params: dict[str, str]) -> RestResult:
        # A naive or malformed date (simple-salesforce sends `...T03:04:05%3A` for a naive datetime)
        # is refused. Salesforce's exact text for this case is not documented; the error code is
        # the one it uses for every bad replication range, and the message is no Python text.
        refusal = SalesforceError(
            400,
            "INVALID_REPLICATION_DATE",
            "start and end must be date-times with a time zone, such as 2026-11-28T10:00:00+00:00",
        )
        try:
            texts = [params["start"], params["end"]]
            if any(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is None for text in texts):
                raise refusal  # naive: parse_datetime would read it as this machine's local time
            start, end = (parse_datetime(text).replace(second=0, microsecond=0) for text in texts)
        except (KeyError, ValueError) as error:
            raise refusal from error
        now = org_now()
        end = min(end, now.replace(second=0, microsecond=0))
        oldest = now - dt.timedelta(days=30 if kind == "updated" else 15)
        if start >= end or (kind == "deleted" and end - start <= dt.timedelta(minutes=1)):
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "start date must be more than one minute before end date"
            )
        if start < oldest:
            raise SalesforceError(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than {(now - oldest).days} days ago",
            )
        start_text, end_text = format_datetime(start), format_datetime(end)
        if kind == "updated":
            return (
                200,
                {"ids": self.store.updated_ids(sobject, start_text, end_text), "latestDateCovered": end_text},
                {},
            )
        return (
            200,
            {
                "deletedRecords": self.store.deleted_records(sobject, start_text, end_text),
                "earliestDateAvailable": minute_floor(self.store.earliest_date_available()),
                "latestDateCovered": end_text,
            },
            {},
        )

    def _composite(self, version: str, body: Any) -> RestResult:
        requests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise SalesforceError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        self._check_subrequests(requests)
        if len(requests) > 25:
            raise SalesforceError(
                400,
                "INVALID_COMPOSITE_REQUEST",
                "The number of subrequests in the composite request exceeded the limit of 25.",
            )
        queries = sum(1 for r in requests if re.search(r"/(query|queryAll)(/|\?|$)", str(r.get("url", ""))))
        if queries > 5:
            raise SalesforceError(
                400,
                "INVALID_COMPOSITE_REQUEST",
                "The number of query subrequests in the composite request exceeded the limit of 5.",
            )
        all_or_none = bool(body.get("allOrNone", False))
        outcomes: dict[str, tuple[int, Any]] = {}  # referenceId -> (status, body) of a subrequest run
        responses: list[dict[str, Any]] = []
        failed_at: int | None = None
        try:
            with self.store.transaction() if all_or_none else contextlib.nullcontext():
                for index, sub in enumerate(requests):
                    status, sub_body = self._composite_subrequest(sub, outcomes)
                    reference = str(sub.get("referenceId"))
                    outcomes[reference] = (status, sub_body)
                    responses.append(
                        {
                            "body": sub_body,
                            "httpHeaders": {},
                            "httpStatusCode": status,
                            "referenceId": reference,
                        }
                    )
                    if status >= 400 and all_or_none:
                        failed_at = index
                        raise _RollBack
        except _RollBack:
            # allOrNone: everything is rolled back; the failed subrequest keeps its error, every
            # other one (run before it or never run) answers PROCESSING_HALTED.
            halted = [{"errorCode": "PROCESSING_HALTED", "message": ROLLED_BACK_MESSAGE}]
            for index, sub in enumerate(requests):
                if index != failed_at:
                    entry = {
                        "body": halted,
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": sub.get("referenceId"),
                    }
                    if index < len(responses):
                        responses[index] = entry
                    else:
                        responses.append(entry)
        return 200, {"compositeResponse": responses}, {}

    @staticmethod
    def _check_subrequests(requests: list[Any]) -> None:
        """A malformed subrequest fails the whole request with 400 before any runs, as documented
        ("an error detected during deserialization"); the wording is the emulator's."""
        seen: set[str] = set()
        for index, sub in enumerate(requests):
            if not isinstance(sub, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", f"compositeRequest[{index}] is not an object")
            for key in ("method", "url", "referenceId"):
                if not isinstance(sub.get(key), str) or not sub[key]:
                    raise SalesforceError(
                        400,
                        "JSON_PARSER_ERROR",
                        f"compositeRequest[{index}].{key} is required and must be a string",
                    )
            reference = sub["referenceId"]
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", reference) or reference in seen:
                raise SalesforceError(
                    400,
                    "INVALID_COMPOSITE_REQUEST",
                    f"compositeRequest[{index}].referenceId {reference!r} must be unique and start with a letter, "
                    "then letters, digits or underscores",
                )
            seen.add(reference)

    def _composite_subrequest(
        self, sub: dict[str, Any], outcomes: dict[str, tuple[int, Any]]
    ) -> tuple[int, Any]:
        try:
            raw_url = resolve_references(str(sub.get("url", "")), outcomes, in_url=True)
            sub_body = resolve_references(sub.get("body"), outcomes, in_url=False)
        except UnresolvedReference as unresolved:
            return 400, [{"errorCode": "PROCESSING_HALTED", "message": str(unresolved)}]
        url = urllib.parse.urlsplit(raw_url)
        match = re.match(r"^/services/data/v(\d+\.\d+)/?(.*)$", url.path)
        injected = self.faults.take_error(url.path + "?" + url.query, in_composite=True)
        if match is None:
            return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        if injected is not None:
            return injected.status, [
                {"message": injected.message, "errorCode": injected.error_code or "UNKNOWN_EXCEPTION"}
            ]
        params = dict(urllib.parse.parse_qsl(url.query))
        status, result, _ = self.rest(
            str(sub.get("method", "GET")).upper(), match.group(1), match.group(2), params, {}, sub_body
        )
        return status, result

    def _bulk(
        self, method: str, version: str, parts: list[str], params: dict[str, str], body: Any
    ) -> RestResult:
        parts = [p for p in parts if p]
        if not parts and method == "POST":
            operation = (body or {}).get("operation", "query")
            if operation not in ("query", "queryAll"):
                raise SalesforceError(400, "INVALIDJOB", f"Invalid operation: {operation}")
            text = (body or {}).get("query", "")
            prepared = self.engine.prepare(text, include_deleted=operation == "queryAll", for_bulk=True)
            job_id = self.store.new_ids("Account")[0].replace("001", "750", 1)
            job = BulkJob(
                job_id,
                operation,
                prepared,
                version,
                format_datetime(org_now()),
                self.faults.bulk_in_progress_polls,
                failure=self._bulk_failure(text),
            )
            self.bulk_jobs[job_id] = job
            return 200, job.info(), {}
        found = self.bulk_jobs.get(parts[0]) if parts else None
        if found is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        job = found
        if len(parts) == 1 and method == "GET":
            if job.state in ("UploadComplete", "InProgress"):
                if job.polls_left > 0:
                    job.polls_left -= 1
                    job.state = "InProgress"
                else:
                    job.state = "Failed" if job.failure else "JobComplete"
            return 200, job.info(), {}
        if len(parts) == 1 and method == "PATCH":
            job.state = "Aborted"
            return 200, job.info(), {}
        if len(parts) == 1 and method == "DELETE":
            del self.bulk_jobs[job.id]
            return 204, None, {}
        if len(parts) == 2 and parts[1] == "results" and method == "GET":
            if job.state != "JobComplete":
                raise SalesforceError(
                    412,
                    "JOB_NOT_COMPLETE",
                    f"can only download query results of successfully completed bulk job {job.id}",
                )
            max_records = int(params.get("maxRecords") or 50000)
            csv_text, count, locator = self.engine.bulk_page(
                job.prepared, params.get("locator") or None, max_records
            )
            return (
                200,
                csv_text,
                {"Sforce-NumberOfRecords": str(count), "Sforce-Locator": locator, "Content-Type": "text/csv"},
            )
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")

    # --- sales team -------------------------------------------------------------------------------
    def set_sales_team_rate(self, rate: float) -> None:
        self.sales_team_rate = rate
        if rate > 0 and (self._sales_task is None or self._sales_task.done()):
            self._sales_task = asyncio.get_running_loop().create_task(self._sales_loop())

    async def _sales_loop(self) -> None:
        while self.sales_team_rate > 0:
            await asyncio.sleep(random.expovariate(self.sales_team_rate))  # a Poisson stream of edits
            try:
                self.sales_team.act()
            except Exception:  # the team must never stop the org
                logger.exception("sales team action failed")


class TruncatedResponse:
    """Headers promise the whole body, then the connection ends half-way: a dropped connection."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send(
            {"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True}
        )
        raise ConnectionAbortedError("emulated dropped connection")


# Salesforce spells its response headers with capitals (Content-Type, Sforce-Locator...), and
# clients exist that read them case-sensitively; Starlette lower-cases every name it sends.
_HEADER_SPELLINGS = {
    "sforce-numberofrecords": "Sforce-NumberOfRecords",
    "www-authenticate": "WWW-Authenticate",
    "etag": "ETag",
}


def salesforce_header_name(name: bytes) -> bytes:
    lower = name.decode("latin-1").lower()
    spelled = _HEADER_SPELLINGS.get(lower) or "-".join(part.capitalize() for part in lower.split("-"))
    return spelled.encode("latin-1")


class SalesforceHeaderNames:
    """ASGI middleware: every response header name spelled as Salesforce spells it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def respell(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [(salesforce_header_name(k), v) for k, v in message.get("headers", [])],
                }
            await send(message)

        await self.app(scope, receive, respell)


def build_app(emulator: Emulator, *, sales_team_rate: float = 0.0) -> Starlette:
    def limit_header() -> dict[str, str]:
        used, maximum = emulator.store.api_usage()
        return {"Sforce-Limit-Info": f"api-usage={used}/{maximum}"}

    def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(
            [{"message": message, "errorCode": code}],
            status_code=status,
            headers=headers,
            media_type=JSON_TYPE,
        )

    async def token(request: Request) -> Response:
        # The token request is application/x-www-form-urlencoded.
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        status, body = emulator.token(form, request.headers.get("authorization", ""))
        return JSONResponse(body, status_code=status, media_type=JSON_TYPE)

    async def revoke(request: Request) -> Response:
        # POST /services/oauth2/revoke with token=<refresh token>: 200 when revoked, 400 otherwise.
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        if emulator.refresh_token_revoke(form.get("token", "")):
            return Response(b"", status_code=200)
        return JSONResponse(
            {"error": "unsupported_token_type", "error_description": "this token type is not supported"},
            status_code=400,
        )

    async def rest(request: Request) -> Response:
        version, path = request.path_params["version"], request.path_params.get("path", "")
        faults = emulator.faults
        if faults.slow_times > 0:
            faults.slow_times -= 1
            await asyncio.sleep(faults.slow_seconds)
        injected = faults.take_error(request.url.path)
        if injected is not None:
            if injected.error_code is None:
                return Response(b"", status_code=injected.status, headers=limit_header())
            return error(injected.status, injected.error_code, injected.message, limit_header())
        authorization = request.headers.get("authorization", "")
        token_value = authorization.removeprefix("Bearer ").removeprefix("OAuth ").strip()
        if not token_value or not emulator.store.session_valid(token_value, time.time()):
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        used, maximum = emulator.store.api_usage()
        if used >= maximum:
            return error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", limit_header())
        emulator.store.api_count()
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON.", limit_header())
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, payload, extra = emulator.rest(
            request.method, version, path, dict(request.query_params), headers, body
        )
        response_headers = {**limit_header(), **extra}
        if status == 204:
            return Response(status_code=204, headers=response_headers)
        if isinstance(payload, str):
            content_type = response_headers.pop("Content-Type", "text/csv")
            return Response(
                payload.encode(), status_code=status, headers=response_headers, media_type=content_type
            )
        if faults.drop_times > 0 and faults.drop_path_contains in request.url.path:
            faults.drop_times -= 1
            return TruncatedResponse(
                json.dumps(payload).encode(), {**response_headers, "Content-Type": JSON_TYPE}
            )  # type: ignore[return-value]  # an ASGI app
        return JSONResponse(payload, status_code=status, headers=response_headers, media_type=JSON_TYPE)

    async def versions(request: Request) -> Response:
        return JSONResponse([{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}])

    routes = [
        Route("/services/oauth2/token", token, methods=["POST"]),
        Route("/services/oauth2/revoke", revoke, methods=["POST"]),
        Route("/services/data/", versions, methods=["GET"]),
        Route("/services/data/v{version:str}/{path:path}", rest, methods=["GET", "POST", "PATCH", "DELETE"]),
        *control_routes(emulator),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sales_team_rate > 0:
            emulator.set_sales_team_rate(sales_team_rate)
        yield
        emulator.sales_team_rate = 0

    async def org_date_header(request: Request, call_next: Any) -> Response:
        # Every response carries the org's time (RFC 7231 Date), as Salesforce's do.
        response = await call_next(request)
        response.headers["Date"] = email.utils.format_datetime(org_now(), usegmt=True)
        return response

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(SalesforceHeaderNames),
            Middleware(BaseHTTPMiddleware, dispatch=org_date_header),
        ],
    )


def control_routes(emulator: Emulator) -> list[Route]:
    """The control API: records in bulk, org generation, the sales team, fields, faults."""
    store = emulator.store

    def handler(
        function: Callable[[dict[str, Any], Request], Any],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
                result = function(body, request)
            except RecordError as exc:
                return JSONResponse({"error": exc.error_code, "message": exc.message}, status_code=400)
            except (KeyError, TypeError, ValueError) as exc:
                return JSONResponse(
                    {"error": "BAD_REQUEST", "message": f"{type(exc).__name__}: {exc}"}, status_code=400
                )
            return JSONResponse(result)

        return endpoint

    def write_options(body: dict[str, Any]) -> Callable[[], str]:
        backdate = float(body.get("backdate_seconds", 0))
        shared = store.stamp(backdate) if body.get("same_modstamp") else None
        return lambda: shared or store.stamp(backdate)

    def create(body: dict[str, Any], request: Request) -> Any:
        sobject, next_stamp = request.path_params["sobject"], write_options(body)
        with store.transaction():  # one request, one transaction (its change events merge, §5)
            return {"ids": [store.create(sobject, values, stamp=next_stamp()) for values in body["records"]]}

    def update(body: dict[str, Any], request: Request) -> Any:
        sobject, next_stamp = request.path_params["sobject"], write_options(body)
        with store.transaction():
            for values in body["records"]:
                values = dict(values)
                store.update(sobject, values.pop("Id"), values, stamp=next_stamp())
        return {"updated": len(body["records"])}

    def delete(body: dict[str, Any], request: Request) -> Any:
        sobject, next_stamp = request.path_params["sobject"], write_options(body)
        with store.transaction():
            for record_id in body["ids"]:
                store.delete(sobject, record_id, stamp=next_stamp())
        return {"deleted": len(body["ids"])}

    def undelete(body: dict[str, Any], request: Request) -> Any:
        with store.transaction():
            for record_id in body["ids"]:
                store.undelete(request.path_params["sobject"], record_id)
        return {"undeleted": len(body["ids"])}

    async def records(request: Request) -> Response:
        include_deleted = request.query_params.get("include_deleted") in ("1", "true")
        where = "" if include_deleted else " WHERE is_deleted = 0"
        try:
            name = table(request.path_params["sobject"])
        except RecordError as exc:
            return JSONResponse({"error": exc.error_code, "message": exc.message}, status_code=exc.status)
        rows = store.db.execute(f"SELECT fields, visible FROM {name}{where} ORDER BY id")
        return JSONResponse({"records": [{**json.loads(f), "_visible": bool(v)} for f, v in rows]})

    def faults(body: dict[str, Any], request: Request) -> Any:
        state = emulator.faults
        if body.get("clear"):
            emulator.faults = state = Faults()
            emulator.pubsub.clear_faults()
            ORG_CLOCK_OFFSET[0] = dt.timedelta(0)
        if body.get("expire_sessions"):
            store.sessions_expire_all()
        if "session_seconds" in body:
            emulator.session_seconds = float(body["session_seconds"])
        if "error" in body:
            spec = body["error"]
            state.errors.append(
                InjectedError(
                    status=int(spec["status"]),
                    error_code=spec.get("error_code"),
                    message=spec.get("message", ""),
                    times=int(spec.get("times", 1)),
                    path_contains=spec.get("path_contains", ""),
                    in_composite=bool(spec.get("in_composite", False)),
                )
            )
        if "slow" in body:
            state.slow_seconds, state.slow_times = (
                float(body["slow"]["seconds"]),
                int(body["slow"].get("times", 1)),
            )
        if "drop_connection" in body:
            state.drop_times = int(body["drop_connection"].get("times", 1))
            state.drop_path_contains = body["drop_connection"].get("path_contains", "")
        if "earliest_date_available" in body:
            # As if the org had existed (and kept its recycle bin) since then.
            store.meta_set("earliest_date_available", body["earliest_date_available"])
        if "clock_offset_seconds" in body:
            ORG_CLOCK_OFFSET[0] = dt.timedelta(seconds=float(body["clock_offset_seconds"]))
            store.clock.restart()
        if "query_timeout_days" in body:
            state.query_timeout_days = body["query_timeout_days"]
        if "page_size" in body:
            state.page_size = body["page_size"]
        if "bulk_query_timeout_days" in body:
            state.bulk_query_timeout_days = body["bulk_query_timeout_days"]
        if "bulk_in_progress_polls" in body:
            state.bulk_in_progress_polls = int(body["bulk_in_progress_polls"])
        if "api_usage" in body:
            store.api_set(body["api_usage"].get("used"), body["api_usage"].get("max"))
        return {"ok": True}

    def fields(body: dict[str, Any], request: Request) -> Any:
        spec = store.add_custom_field(body["sobject"], body)
        return {"name": spec.name}

    def hide(body: dict[str, Any], request: Request) -> Any:
        store.set_field_hidden(body["sobject"], body["field"], bool(body.get("hidden", True)))
        return {"ok": True}

    def values(body: dict[str, Any], request: Request) -> Any:
        return {"changed": store.set_values_silently(body["sobject"], body["field"], body["values"])}

    def visibility(body: dict[str, Any], request: Request) -> Any:
        return {"changed": store.set_visible(body["sobject"], body["ids"], bool(body["visible"]))}

    def currency(body: dict[str, Any], request: Request) -> Any:
        store.set_multi_currency(bool(body.get("enabled", True)), body.get("default", "USD"))
        return {"ok": True}

    def purge(body: dict[str, Any], request: Request) -> Any:
        store.purge()
        return {"earliestDateAvailable": store.earliest_date_available()}

    def merge(body: dict[str, Any], request: Request) -> Any:
        store.merge(body["sobject"], body["master_id"], list(body["loser_ids"]))
        return {"ok": True}

    def convert(body: dict[str, Any], request: Request) -> Any:
        return store.convert_lead(
            body["lead_id"],
            contact_id=body.get("contact_id"),
            account_id=body.get("account_id"),
            create_opportunity=bool(body.get("create_opportunity", True)),
            opportunity_name=body.get("opportunity_name"),
        )

    def generate(body: dict[str, Any], request: Request) -> Any:
        return generate_org(
            store,
            opportunities=int(body["opportunities"]),
            people=body.get("people"),
            seed=int(body.get("seed", 1)),
            custom_fields=bool(body.get("custom_fields", False)),
        )

    def sales_team(body: dict[str, Any], request: Request) -> Any:
        emulator.set_sales_team_rate(float(body.get("rate", 0)))
        return {"rate": emulator.sales_team_rate, "actions": emulator.sales_team.actions}

    def act(body: dict[str, Any], request: Request) -> Any:
        return {"did": [emulator.sales_team.act() for _ in range(int(body.get("times", 1)))]}

    async def stats(request: Request) -> Response:
        used, maximum = store.api_usage()
        return JSONResponse(
            {
                "api_usage": {"used": used, "max": maximum},
                "counts": {name: store.count(name) for name in OBJECT_NAMES},
                "sales_team_actions": emulator.sales_team.actions,
                "bulk_jobs": len(emulator.bulk_jobs),
                # Jobs by state: how a test tells a load that went through Bulk from a fallback.
                "bulk_job_states": dict(Counter(job.state for job in emulator.bulk_jobs.values())),
            }
        )

    def refresh_token(body: dict[str, Any], request: Request) -> Any:
        return {"refresh_token": emulator.refresh_token_mint(str(body["client_id"]))}

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "instance_url": emulator.config.instance_url})

    prefix = "/__emulator__"
    routes = [
        Route(f"{prefix}/health", health),
        Route(f"{prefix}/stats", stats),
        Route(f"{prefix}/records/{{sobject}}", records, methods=["GET"]),
        Route(f"{prefix}/records/{{sobject}}", handler(create), methods=["POST"]),
        Route(f"{prefix}/records/{{sobject}}", handler(update), methods=["PATCH"]),
        Route(f"{prefix}/records/{{sobject}}/delete", handler(delete), methods=["POST"]),
        Route(f"{prefix}/records/{{sobject}}/undelete", handler(undelete), methods=["POST"]),
        Route(f"{prefix}/faults", handler(faults), methods=["POST"]),
        Route(
            f"{prefix}/pubsub", handler(lambda body, request: emulator.pubsub.control(body)), methods=["POST"]
        ),
        Route(f"{prefix}/fields", handler(fields), methods=["POST"]),
        Route(f"{prefix}/fields/hide", handler(hide), methods=["POST"]),
        Route(f"{prefix}/fields/values", handler(values), methods=["POST"]),
        Route(f"{prefix}/visibility", handler(visibility), methods=["POST"]),
        Route(f"{prefix}/multi-currency", handler(currency), methods=["POST"]),
        Route(f"{prefix}/purge", handler(purge), methods=["POST"]),
        Route(f"{prefix}/merge", handler(merge), methods=["POST"]),
        Route(f"{prefix}/convert-lead", handler(convert), methods=["POST"]),
        Route(f"{prefix}/generate", handler(generate), methods=["POST"]),
        Route(f"{prefix}/sales-team", handler(sales_team), methods=["POST"]),
        Route(f"{prefix}/sales-team/act", handler(act), methods=["POST"]),
        Route(f"{prefix}/oauth/refresh-token", handler(refresh_token), methods=["POST"]),
    ]
    if emulator.config.control_from_anywhere:
        return routes
    return [Route(r.path, loopback_only(r.endpoint), methods=list(r.methods or [])) for r in routes]


LOOPBACK_CLIENTS = {"127.0.0.1", "::1", "localhost"}


def loopback_only(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The control API rewrites the org: it answers only this machine unless the emulator was
    started with --control-from-anywhere."""

    async def guarded(request: Request) -> Response:
        client = request.client.host if request.client else ""
        if client not in LOOPBACK_CLIENTS and not client.startswith("127."):
            return JSONResponse(
                {
                    "error": "FORBIDDEN",
                    "message": "The control API answers only on loopback (--control-from-anywhere).",
                },
                status_code=403,
            )
        return await endpoint(request)

    return guarded
