"""P9: login attempts are throttled (django-axes): five wrong passwords for a user name from one
address lock that pair out for a while, the right password included."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5)
def test_five_wrong_passwords_lock_the_name_out_even_with_the_right_one(client):
    User.objects.create_user(username="kim", password="the-right-password", is_staff=True)
    statuses = [
        client.post("/admin/login/", {"username": "kim", "password": "wrong"}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]  # the form again with its error; the fifth locks
    locked = client.post("/admin/login/", {"username": "kim", "password": "the-right-password"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5)
def test_a_success_before_the_limit_resets_the_count(client):
    User.objects.create_user(username="lee", password="the-right-password", is_staff=True)
    for _ in range(4):
        client.post("/admin/login/", {"username": "lee", "password": "wrong"})
    assert (
        client.post("/admin/login/", {"username": "lee", "password": "the-right-password"}).status_code == 302
    )
    client.logout()
    for _ in range(4):
        client.post("/admin/login/", {"username": "lee", "password": "wrong"})
    assert (
        client.post("/admin/login/", {"username": "lee", "password": "the-right-password"}).status_code == 302
    )
