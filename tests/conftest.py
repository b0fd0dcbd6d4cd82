from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.db import connection

from oppsync_site.roles import ADMINISTRATORS, MARKETERS, VIEWERS, roles_apply


@pytest.fixture(scope="session", autouse=True)
def no_session_outlives_the_suite(django_db_setup, django_db_blocker):
    """Processes the tests start (workers killed with SIGKILL, the stack of the browser walks)
    can leave a PostgreSQL session behind for a moment; end them before the test database is
    dropped, which PostgreSQL refuses while anyone is connected."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def roles(db):
    """The groups of contract §2b. A transactional test's flush removes what the data migration
    made, so tests that need the groups ask for them."""
    roles_apply(django_apps)


def _user_in_group(username: str, group_name: str) -> User:
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def administrator(roles) -> User:
    return _user_in_group("ada-admin", ADMINISTRATORS)


@pytest.fixture
def marketer(roles) -> User:
    return _user_in_group("mark-marketer", MARKETERS)


@pytest.fixture
def viewer(roles) -> User:
    return _user_in_group("vic-viewer", VIEWERS)


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(username="root", password="pw", email="root@example.com")
