"""`python manage.py user_add NAME --role marketer`: a staff user in one of the roles of contract
§2b, with a generated password printed once (or the one in the environment variable named by
--password-env)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from oppsync_site.roles import ADMINISTRATORS, MARKETERS, VIEWERS, roles_apply

ROLES = {"administrator": ADMINISTRATORS, "marketer": MARKETERS, "viewer": VIEWERS}


class Command(BaseCommand):
    help = "Create a user in a role (administrator, marketer or viewer) who can log in to the admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLES), required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", help="environment variable holding the password to set")

    def handle(
        self, *args: Any, username: str, role: str, email: str, password_env: str | None, **options: Any
    ) -> None:
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} exists already.")
        if password_env:
            password = os.environ.get(password_env, "")
            if len(password) < 8:
                raise CommandError(f"${password_env} must hold a password of at least 8 characters.")
        else:
            password = secrets.token_urlsafe(12)
        roles_apply(apps)  # the groups exist even if someone deleted one
        user = User.objects.create_user(username=username, email=email, password=password, is_staff=True)
        user.groups.add(Group.objects.get(name=ROLES[role]))
        self.stdout.write(f"Created {username!r} as {ROLES[role][:-1].lower()}.")
        if not password_env:
            self.stdout.write(f"Password (shown once): {password}")
