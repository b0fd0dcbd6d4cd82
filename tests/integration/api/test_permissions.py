"""The permission matrix: every role (and anonymous, and a user without a role) x every endpoint
x every method, against contract §2b. A cell that differs fails."""

from __future__ import annotations

import pytest

from opportunities.models import Activity, ContactRole, Opportunity
from people.models import Person

pytestmark = pytest.mark.integration

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROLES = ["administrator", "marketer", "viewer", "nobody", None]


def _endpoints():
    person = ContactRole.live.filter(person__isnull=False).first().person_id
    return {
        "persons": "/api/v1/persons/",
        "person": f"/api/v1/persons/{Person.objects.first().pk}/",
        "person-opportunities": f"/api/v1/persons/{person}/opportunities/",
        "opportunities": "/api/v1/opportunities/",
        "opportunity": f"/api/v1/opportunities/{Opportunity.live.first().pk}/",
        "contact-roles": "/api/v1/contact-roles/",
        "contact-role": f"/api/v1/contact-roles/{ContactRole.live.first().pk}/",
        "activities": "/api/v1/activities/",
        "activity": f"/api/v1/activities/{Activity.objects.first().pk}/",
        "settings": "/api/v1/settings/",
        "sync-status": "/api/v1/sync/status/",
    }


def expected(role: str | None, endpoint: str, method: str) -> int:
    if role is None:
        return 401
    if role == "nobody":
        return 403  # a user in no group sees nothing
    if endpoint == "sync-status":
        if role != "administrator":
            return 403
        return 200 if method == "GET" else 405
    if endpoint == "settings":
        if method == "GET":
            return 200
        if role != "administrator":
            return 403
        return 200 if method == "PATCH" else 405
    # Synced data: readable by every role, read-only for everybody.
    return 200 if method == "GET" else 405


def test_the_permission_matrix(api):
    endpoints = _endpoints()
    differences = []
    for role in ROLES:
        client = api(role)
        for endpoint, url in endpoints.items():
            for method in METHODS:
                body = {"default_currency": "USD"} if endpoint == "settings" else {"name": "x"}
                response = client.generic(
                    method, url, data=__import__("json").dumps(body), content_type="application/json"
                )
                want = expected(role, endpoint, method)
                if response.status_code != want:
                    differences.append(
                        f"{role} {method} {endpoint}: {response.status_code}, contract says {want}"
                    )
                if response.status_code != 204:
                    assert response["Content-Type"].startswith("application/json"), (role, method, endpoint)
    assert not differences, "\n".join(differences)
    assert Person.objects.count() and Opportunity.objects.count()  # nothing was deleted by the attempts


def test_session_authentication_works_too(client, synced_data, django_user_model):
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="api-viewer"))
    assert client.get("/api/v1/persons/").status_code == 200
