"""P9: a newcomer adds a Marketer or a Viewer with one command."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "group"), [("marketer", "Marketers"), ("viewer", "Viewers"), ("administrator", "Administrators")]
)
def test_user_add_creates_a_staff_user_in_the_role(role, group, capsys):
    call_command("user_add", f"new-{role}", "--role", role)
    user = User.objects.get(username=f"new-{role}")
    password = capsys.readouterr().out.split("Password (shown once): ")[1].strip()
    assert (
        user.is_staff
        and not user.is_superuser
        and list(user.groups.values_list("name", flat=True)) == [group]
    )
    assert user.check_password(password)


def test_user_add_refuses_a_taken_name_and_a_short_password(monkeypatch):
    call_command("user_add", "taken", "--role", "viewer")
    with pytest.raises(CommandError, match="exists already"):
        call_command("user_add", "taken", "--role", "viewer")
    monkeypatch.setenv("NEW_PASSWORD", "short")
    with pytest.raises(CommandError, match="at least 8"):
        call_command("user_add", "other", "--role", "viewer", "--password-env", "NEW_PASSWORD")
