"""Our own exceptions for everything that can go wrong talking to Salesforce. Each message is
written for a person reading the sync status page."""

from __future__ import annotations


class SalesforceError(Exception):
    """Base class: a Salesforce call failed."""


class SalesforceNotConfigured(SalesforceError):
    """No credentials are configured, so the sync is off."""


class SalesforceAuthError(SalesforceError):
    """The org refused the integration user's credentials."""


class SalesforceQuotaExceeded(SalesforceError):
    """The org's daily API limit is used up (403 REQUEST_LIMIT_EXCEEDED) or the quota guard stopped us."""


class SalesforceTransientError(SalesforceError):
    """5xx, 429, a dropped or refused connection: worth trying again later."""


class SalesforceInvalidField(SalesforceError):
    """A selected field is unknown or hidden (INVALID_FIELD): describe again."""


class SalesforceQueryTimeout(SalesforceError):
    """QUERY_TIMEOUT: the window was too wide for the org."""


class SalesforceRequestError(SalesforceError):
    """Any other refusal (4xx) that trying again will not fix."""

    def __init__(self, message: str, error_code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


class ChangeStreamError(SalesforceError):
    """The Pub/Sub API refused or dropped the change stream. The message says why in words;
    `status` is the gRPC status name and `error_code` the trailer's `error-code`."""

    def __init__(self, message: str, *, status: str = "", error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ChangeStreamAuthExpired(ChangeStreamError):
    """UNAUTHENTICATED: the access token expired or was revoked; log in again and resubscribe."""


class ChangeStreamReplayInvalid(ChangeStreamError):
    """The stored replay id is unknown or past the retention: start from LATEST and run a cycle."""


class ChangeStreamUnavailable(ChangeStreamError):
    """The org does not offer the stream to this user (CDC not enabled for the object, no
    permission, the daily event deliveries used up): poll as without CDC, try again slowly."""


class ChangeStreamTransient(ChangeStreamError):
    """UNAVAILABLE, INTERNAL, a stream that ended or went silent: resubscribe with backoff."""
