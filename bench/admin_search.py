"""The admin's people search where the matches sit together in the alphabet (issue P12, item 4).

    python -m bench.admin_search                      # 1,000,000 people on PostgreSQL (builds them)
    python -m bench.admin_search --reuse              # the people the last run built

bench/bigorg.py names every person's company after a random surname, so "smith" there matches
people all through the alphabet and any walk of the name index fills its page at once. In a real
org a surname matches the people of that surname (their names and emails): together in the
alphabet. This builds bigorg's people with companies named after no surname, and times the admin
searches beside the API's (whose pages are ordered by id, over which the matches are spread).
"""

from __future__ import annotations

from bench.pages import arguments, build_and_measure

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/oppsync_bench_search"
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell"]
URLS = [
    "/admin/people/person/?q=smith",
    "/admin/people/person/?q=james+smith",
    "/admin/people/person/?q=young",
    "/admin/people/person/?q=son",
    "/admin/people/person/?q=example",
    "/admin/people/person/",
    "/api/v1/persons/?search=smith",
]


def build(people: int) -> None:
    from django.db import connection

    from bench.bigorg import BigOrgSize, generate

    print(f"Building {people:,} people, their companies named after no surname ...")
    generate(BigOrgSize(people=people, opportunities=0, contact_roles=0, activities=0))
    names = " ".join(f"WHEN {i} THEN '{name} Corp'" for i, name in enumerate(COMPANIES))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE people_person SET company = CASE id % {len(COMPANIES)} {names} END")
        # As bigorg does: VACUUM refuses to run in a transaction (the suite's tiny run).
        can_vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        cursor.execute(f"{'VACUUM ANALYZE' if can_vacuum else 'ANALYZE'} people_person")


def main() -> None:
    build_and_measure(arguments(__doc__ or "", DEFAULT_DATABASE), build, URLS)


if __name__ == "__main__":
    main()
