"""Saving campaigns: every part checked (triggers and smart list against the filter registry,
the webhook against the address rules) before anything is written."""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from smartlists.registry import Catalog
from smartlists.validation import DefinitionError, unstorable_places

from .models import Campaign, Qualification
from .targets import UnsafeTarget, url_check
from .triggers import check_smart_list, check_trigger_queries
from .webhooks import RESERVED_HEADERS

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
MAX_HEADERS = 20


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _sendable_header_value(value: str) -> bool:
    """Whether http.client can send the value: Latin-1 only (it encodes headers so), and no
    control characters (CR and LF would split the header; the others receivers refuse), and no
    leading space or tab (requests refuses such a value at every attempt: InvalidHeader)."""
    if value[:1].isspace():
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value)


def qualification_parse(raw: Any) -> tuple[str, int | None]:
    """`"every_time"`, `"once"` or `{"once_every_days": n}` (contract §3)."""
    if raw in (Qualification.EVERY_TIME, Qualification.ONCE):
        return str(raw), None
    if isinstance(raw, dict) and set(raw) == {"once_every_days"}:
        days = raw["once_every_days"]
        if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 3650:
            return Qualification.ONCE_EVERY_DAYS, days
    raise DefinitionError(
        {"qualification": ['must be "every_time", "once" or {"once_every_days": n} with n from 1 to 3650']}
    )


def qualification_json(campaign: Campaign) -> Any:
    if campaign.qualification == Qualification.ONCE_EVERY_DAYS:
        return {"once_every_days": campaign.qualification_days}
    return campaign.qualification


def webhook_check(url: Any, headers: Any) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if not isinstance(url, str) or not url or len(url) > 2000:
        errors["webhook.url"] = ["must be an http(s) URL of at most 2000 characters"]
    else:
        try:
            url_check(url)
        except UnsafeTarget as error:
            errors["webhook.url"] = [str(error)]
    clean: dict[str, str] = {}
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        errors["webhook.headers"] = [
            f"must be an object of at most {MAX_HEADERS} header names and text values"
        ]
    else:
        for name, value in headers.items():
            if not HEADER_NAME.fullmatch(name):
                errors[f"webhook.headers.{name}"] = ["is not a valid header name"]
            elif name.lower() in RESERVED_HEADERS:
                errors[f"webhook.headers.{name}"] = ["is set by OppSync itself"]
            elif not isinstance(value, str) or len(value) > 2000 or not _sendable_header_value(value):
                errors[f"webhook.headers.{name}"] = [
                    "must be text of at most 2000 characters on one line, in Latin-1 (HTTP headers "
                    "carry no other characters), without control characters or a leading space"
                ]
            else:
                clean[name] = value
    if errors:
        raise DefinitionError(errors)
    return clean


def campaign_save(
    *,
    campaign: Campaign | None,
    data: dict[str, Any],
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> tuple[Campaign, str | None]:
    """Create or update a campaign from API-shaped data (only the keys given change on update).
    Returns the campaign and, when a secret was generated, that secret (shown once)."""
    campaign = campaign or Campaign()
    creating = campaign.pk is None
    catalog = Catalog.load()
    errors: dict[str, list[str]] = {}

    def check(run: Any) -> Any:
        """Run one part's check; collect its errors instead of stopping at the first part."""
        try:
            return run()
        except DefinitionError as error:
            errors.update(error.errors)
            return None

    # Before anything reads them: a string no database stores (NUL, a lone surrogate) would be a
    # 500 wherever it went; the smart-list layer's walker names its place.
    for key in ("name", "description", "triggers", "smart_list", "qualification", "webhook"):
        unstorable_places(data.get(key), key, errors)
    if errors:
        raise DefinitionError(errors)
    if "name" in data or creating:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            errors["name"] = ["must be text of 1 to 255 characters"]
        else:
            campaign.name = name.strip()
    if "description" in data:
        campaign.description = str(data["description"] or "")[:5000]
    if "triggers" in data or creating:
        check(lambda: check_trigger_queries(data.get("triggers"), catalog))
        campaign.triggers = data.get("triggers") or []
    if "smart_list" in data:
        check(lambda: check_smart_list(data["smart_list"], catalog))
        campaign.smart_list = data["smart_list"]
    if "qualification" in data:
        parsed = check(lambda: qualification_parse(data["qualification"]))
        if parsed:
            campaign.qualification, campaign.qualification_days = parsed
    generated: str | None = None
    if "webhook" in data or creating:
        webhook = data.get("webhook")
        if not isinstance(webhook, dict):
            errors["webhook"] = ['must be an object {"url", "headers", "secret"}']
        else:
            url = webhook.get("url", campaign.webhook_url if not creating else None)
            headers = check(lambda: webhook_check(url, webhook.get("headers", campaign.webhook_headers)))
            if headers is not None:
                campaign.webhook_url, campaign.webhook_headers = str(url), headers
            secret = webhook.get("secret")
            if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 200):
                errors["webhook.secret"] = [
                    "must be text of 16 to 200 characters (or leave it out to get one)"
                ]
            elif secret:
                campaign.webhook_secret = secret
            elif creating:
                generated = campaign.webhook_secret = new_secret()
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = ["must be true or false"]
        else:
            if data["is_active"] and (creating or not campaign.is_active):
                # Switched on (or resumed after a pause): activities from now on trigger it;
                # those recorded while it was off or paused never do (as in Marketo).
                campaign.active_since = timezone.now()
                campaign.paused_at, campaign.paused_reason = None, ""
            campaign.is_active = data["is_active"]
    elif creating:
        campaign.active_since = timezone.now() if campaign.is_active else None
    if errors:
        raise DefinitionError(errors)
    with transaction.atomic():
        if creating and user is not None and user.is_authenticated:
            campaign.created_by = user  # type: ignore[assignment]
        campaign.save()
    return campaign, generated


def campaign_secret_rotate(campaign: Campaign) -> str:
    secret = new_secret()
    Campaign.objects.filter(pk=campaign.pk).update(webhook_secret=secret)
    campaign.webhook_secret = secret
    return secret
