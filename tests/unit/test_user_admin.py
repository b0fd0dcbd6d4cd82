"""P9: an Administrator who is not a superuser manages users and their role only, and nobody
reads an API key after it was created."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from rest_framework.authtoken.models import Token

from oppsync_site.roles import ADMINISTRATORS, MARKETERS

pytestmark = pytest.mark.django_db


def _change_form(user: User, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    data.update(changes)
    return data


def test_an_administrator_cannot_make_itself_superuser_or_grant_itself_permissions(client, administrator):
    client.force_login(administrator)
    url = reverse("admin:auth_user_change", args=[administrator.pk])
    page = client.get(url).content.decode()
    assert 'name="is_superuser"' not in page and 'name="user_permissions"' not in page
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    response = client.post(
        url, _change_form(administrator, is_superuser="on", user_permissions=every_permission)
    )
    assert response.status_code == 302
    administrator.refresh_from_db()
    assert not administrator.is_superuser and not administrator.user_permissions.exists()
    assert administrator.groups.filter(name=ADMINISTRATORS).exists()


def test_an_administrator_manages_roles_but_not_a_superusers_account(
    client, administrator, superuser, marketer
):
    client.force_login(administrator)
    page = client.get(reverse("admin:auth_user_change", args=[marketer.pk])).content.decode()
    offered = set(Group.objects.filter(name__in=[ADMINISTRATORS, MARKETERS]).values_list("pk", flat=True))
    assert all(f'value="{pk}"' in page for pk in offered)
    assert (
        client.post(
            reverse("admin:auth_user_change", args=[superuser.pk]), _change_form(superuser)
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("admin:auth_user_delete", args=[superuser.pk]), {"post": "yes"}).status_code
        == 403
    )
    # A superuser still sees and sets everything.
    client.force_login(superuser)
    assert (
        'name="is_superuser"'
        in client.get(reverse("admin:auth_user_change", args=[marketer.pk])).content.decode()
    )


def test_api_keys_are_shown_once_and_then_only_as_a_prefix(client, administrator, marketer):
    client.force_login(administrator)
    response = client.post(reverse("admin:oppsync_site_apitoken_add"), {"user": marketer.pk}, follow=True)
    key = Token.objects.get(user=marketer).key
    assert key in response.content.decode()  # the creation message, once
    listing = client.get(reverse("admin:oppsync_site_apitoken_changelist")).content.decode()
    detail = client.get(reverse("admin:oppsync_site_apitoken_change", args=[marketer.pk])).content.decode()
    assert key not in listing and key not in detail
    assert f"{key[:6]}…" in listing
