"""Every page of the web UI (and the API lists) at a big org: p50 of each, target under 1 s.

    python -m bench.pages                      # 1,000,000 people on PostgreSQL (builds it, minutes)
    python -m bench.pages --reuse              # the org the last run built
    python -m bench.pages --people 100000 --database-url sqlite:////tmp/pages.sqlite3

The org comes from bench/bigorg.py (shared with the smart-list benchmark): as many opportunities as
people (three custom fields), 2.5 contact roles and 5 activities per person. Pages are rendered by
Django's test client in this process, templates included, so a figure is the server's time for
the page without the network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/oppsync_bench"
TARGET_SECONDS = 1.0


def _setup(database_url: str, reuse: bool) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "oppsync_site.settings.local",
            "OPPSYNC_VAR_DIR": tempfile.mkdtemp(prefix="oppsync-bench-pages-"),
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_USER": "1000000/minute",
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    if not reuse and database_url.startswith("postgres"):
        from bench.common import _recreate_postgres_database

        _recreate_postgres_database(database_url)
    elif not reuse and database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    call_command("migrate", verbosity=0)


def _urls() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        # The busiest person (most live roles) among a slice, and one of their opportunities.
        cursor.execute(
            "SELECT person_id, count(*) FROM opportunities_contactrole WHERE is_deleted = false "
            "AND person_id IN (SELECT id FROM people_person ORDER BY id LIMIT 5000) "
            "GROUP BY person_id ORDER BY count(*) DESC LIMIT 1"
        )
        person_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT opportunity_id FROM opportunities_contactrole WHERE person_id = %s AND is_deleted = false LIMIT 1",
            [person_id],
        )
        opportunity_id = cursor.fetchone()[0]
    person = f"/admin/people/person/{person_id}/change/"
    return [
        "/admin/",
        "/admin/people/person/",
        "/admin/people/person/?q=smith",
        "/admin/people/person/?q=james.smithson",
        "/admin/people/person/?lead_source=Web&is_deleted_in_salesforce__exact=0",
        person,
        f"{person}?tab=opportunities",
        f"{person}?tab=opportunities&sort=-amount",
        f"{person}?tab=activity",
        f"{person}?tab=activity&type=opportunity_updated&from=2026-01-01",
        "/admin/opportunities/opportunity/",
        "/admin/opportunities/opportunity/?q=garcia",
        "/admin/opportunities/opportunity/?stage_name=Prospecting&is_closed__exact=0",
        "/admin/opportunities/opportunity/?close_date__gte=2026-01-01&close_date__lte=2026-03-31&lead_source=Web",
        f"/admin/opportunities/opportunity/{opportunity_id}/change/",
        "/admin/opportunities/activity/",
        "/admin/opportunities/activity/?activity_type__exact=opportunity_updated",
        "/admin/opportunities/activity/?occurred_at__gte=2026-11-01&occurred_at__lte=2026-11-07",
        "/admin/opportunities/contactrole/",
        "/admin/opportunities/contactrole/?role=Evaluator",
        "/admin/sync-status/",
        "/admin/oppsync_site/subscriptionsettings/1/change/",
        "/api/v1/persons/",
        "/api/v1/persons/?search=smith",
        f"/api/v1/persons/{person_id}/opportunities/",
        "/api/v1/opportunities/",
        "/api/v1/opportunities/?stage=Prospecting&is_closed=false",
        "/api/v1/contact-roles/",
        "/api/v1/activities/",
        "/api/v1/activities/?type=opportunity_updated",
    ]


def measure(runs: int, urls: list[str] | None = None) -> list[tuple[str, int, float]]:
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    results = []
    for url in urls or _urls():
        status = client.get(url).status_code  # warm: caches, the planner, the settings row
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            timings.append(time.perf_counter() - started)
        results.append((url, status, statistics.median(timings)))
    return results


def arguments(description: str, database: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=database)
    parser.add_argument("--reuse", action="store_true", help="measure what the last run built")
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args()


def build_and_measure(
    args: argparse.Namespace, build: Callable[[int], None], urls: list[str] | None = None
) -> None:
    """Build (unless --reuse) with `build(people)`, then print the p50 of each page."""
    _setup(args.database_url, args.reuse)
    if not args.reuse:
        started = time.perf_counter()
        build(args.people)
        print(f"built in {time.perf_counter() - started:.0f} s")
    print(f"\np50 of {args.runs} loads per page (target under {TARGET_SECONDS:.0f} s):")
    slow = 0
    for url, status, p50 in measure(args.runs, urls):
        flag = (
            ""
            if p50 < TARGET_SECONDS and status == 200
            else "  <-- over target"
            if status == 200
            else f"  <-- HTTP {status}"
        )
        slow += bool(flag)
        print(f"  {p50 * 1000:8.0f} ms  {status}  {url}{flag}")
    print(f"\n{slow} page(s) over target or failing")


def _build_org(people: int) -> None:
    from bench.bigorg import BigOrgSize, generate

    size = BigOrgSize.scaled(people)
    print(f"Building {size} ...")
    generate(size)


def main() -> None:
    build_and_measure(arguments(__doc__ or "", DEFAULT_DATABASE), _build_org)


if __name__ == "__main__":
    main()
