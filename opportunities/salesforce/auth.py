"""The OAuth 2.0 token call of contract §1: client credentials, or JWT bearer.

simple-salesforce's own login helpers only reach `*.salesforce.com`, so OppSync calls the token
endpoint itself and hands the session to simple-salesforce (salesforce-api.md §0 item 1).
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

from .exceptions import SalesforceAuthError, SalesforceNotConfigured, SalesforceTransientError


@dataclass(frozen=True)
class SalesforceConfig:
    login_url: str
    client_id: str
    client_secret: str = ""
    username: str = ""
    private_key_file: str = ""
    # Further ways to log in: a refresh token (from the web-server flow), or a password and the
    # user's security token (the username-password flow).
    refresh_token: str = ""
    password: str = ""
    security_token: str = ""
    api_version: str = "59.0"
    ca_bundle: str = ""
    # Seconds to connect, and to wait for the next bytes of a response: no call hangs forever.
    connect_timeout: float = 10.0
    read_timeout: float = 180.0

    @property
    def configured(self) -> bool:
        return bool(self.client_id and (self.client_secret or (self.username and self.private_key_file)))

    @property
    def flow(self) -> str:
        """Which OAuth flow logs in: the most specific credentials given win."""
        if self.refresh_token and self.client_secret:
            return "refresh_token"
        if self.username and self.password and self.client_secret:
            return "password"
        if self.client_secret:
            return "client_credentials"
        return "jwt_bearer"

    @classmethod
    def from_settings(cls) -> SalesforceConfig:
        from django.conf import settings

        return cls(
            login_url=settings.SALESFORCE_LOGIN_URL.rstrip("/"),
            client_id=settings.SALESFORCE_CLIENT_ID,
            client_secret=settings.SALESFORCE_CLIENT_SECRET,
            username=settings.SALESFORCE_USERNAME,
            private_key_file=settings.SALESFORCE_PRIVATE_KEY_FILE,
            refresh_token=settings.SALESFORCE_REFRESH_TOKEN,
            password=settings.SALESFORCE_PASSWORD,
            security_token=settings.SALESFORCE_SECURITY_TOKEN,
            api_version=settings.SALESFORCE_API_VERSION,
            ca_bundle=settings.SALESFORCE_CA_BUNDLE,
            connect_timeout=settings.SALESFORCE_CONNECT_TIMEOUT,
            read_timeout=settings.SALESFORCE_READ_TIMEOUT,
        )


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str
    # The org id: the first id in the token response's identity URL `.../id/<orgId>/<userId>`
    # (the Pub/Sub API's `tenantid`).
    org_id: str = ""


class TimeoutSession(requests.Session):
    """A session whose every request has a (connect, read) timeout unless the caller gives one:
    simple-salesforce passes none, and requests waits forever by default."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def http_session(config: SalesforceConfig) -> requests.Session:
    """A session that trusts `SALESFORCE_CA_BUNDLE` when set, with timeouts on every call.
    `trust_env` is off because REQUESTS_CA_BUNDLE would otherwise override `verify`
    (salesforce-api.md §0 item 9)."""
    session = TimeoutSession((config.connect_timeout, config.read_timeout))
    session.trust_env = False
    session.verify = config.ca_bundle or True
    return session


def token_request(config: SalesforceConfig, session: requests.Session) -> Token:
    """POST {login_url}/services/oauth2/token.

    Reference: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
    Reference: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
    Reference: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
    Reference: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_username_password_flow.htm
    """
    if not config.configured:
        raise SalesforceNotConfigured(
            "Salesforce is not configured: set SALESFORCE_CLIENT_ID with SALESFORCE_CLIENT_SECRET, "
            "or with SALESFORCE_USERNAME and SALESFORCE_PRIVATE_KEY_FILE."
        )
    auth: tuple[str, str] | None = (config.client_id, config.client_secret)
    if config.flow == "refresh_token":
        form = {"grant_type": "refresh_token", "refresh_token": config.refresh_token}
    elif config.flow == "password":
        form = {
            "grant_type": "password",
            "username": config.username,
            "password": config.password + config.security_token,
        }
    elif config.flow == "client_credentials":
        form = {"grant_type": "client_credentials"}
    else:
        try:
            private_key = Path(config.private_key_file).read_bytes()
        except OSError as error:
            raise SalesforceAuthError(
                f"Cannot read SALESFORCE_PRIVATE_KEY_FILE {config.private_key_file!r}: {error.strerror}."
            ) from error
        claims = {
            "iss": config.client_id,
            "sub": config.username,
            "aud": config.login_url,
            "exp": int(time.time()) + 180,
        }
        try:
            assertion = jwt.encode(claims, private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            raise SalesforceAuthError(
                f"SALESFORCE_PRIVATE_KEY_FILE is not a usable RSA private key: {error}."
            ) from error
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        auth = None
    url = f"{config.login_url}/services/oauth2/token"
    try:
        response = session.post(url, data=form, auth=auth)
    except requests.exceptions.SSLError as error:
        raise SalesforceAuthError(
            f"Cannot verify the TLS certificate of {config.login_url} (check SALESFORCE_CA_BUNDLE): {error}."
        ) from error
    except requests.RequestException as error:
        raise SalesforceTransientError(f"Cannot reach {config.login_url}: {type(error).__name__}.") from error
    if response.status_code >= 500:
        raise SalesforceTransientError(
            f"Salesforce login answered HTTP {response.status_code}; will try again."
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        reason = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
        raise SalesforceAuthError(f"Salesforce refused the integration user's login: {reason}.")
    return Token(
        access_token=body["access_token"],
        instance_url=str(body["instance_url"]).rstrip("/"),
        org_id=org_id_from_identity_url(str(body.get("id") or "")),
    )


def org_id_from_identity_url(url: str) -> str:
    """`https://login.salesforce.com/id/00Dxx0000001gEREAY/005xx000001SwiUAAS` → `00Dxx0000001gEREAY`
    ("" when the response carried no identity URL)."""
    parts = urllib.parse.urlsplit(url).path.strip("/").split("/")
    return parts[-2] if len(parts) >= 3 and parts[-3] == "id" else ""
