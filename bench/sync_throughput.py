"""Benchmark: initial-sync throughput for an org of N opportunities (with their people and
roles), on SQLite and on PostgreSQL, next to two floors measured in the same run:

- paging: reading the same rows (the sync's SELECT lists) from the emulator through REST pages,
  writing nothing;
- inserting: bulk-inserting the same rows into the same tables, with no sync logic.

Target: sync time at most 1.5 x (paging + inserting).

    .venv/bin/python -m bench.sync_throughput [--opportunities 100000] [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_URL = "postgres://postgres@127.0.0.1:5432/oppsync_bench"


def one_database(data_dir: Path, database: str) -> None:
    from bench.common import django_for
    from salesforce_emulator.control import EmulatorProcess

    process = EmulatorProcess(data_dir, _port())
    process.start()
    try:
        django_for(process, database_url=PG_URL if database == "postgres" else None)
        from django.db import connection

        from opportunities.models import Activity, ContactRole, Opportunity
        from opportunities.sync import engine
        from opportunities.sync.apply import CONTACT_COLUMNS, LEAD_COLUMNS, OPPORTUNITY_COLUMNS, split_values
        from opportunities.sync.fields import active_fields, field_definitions_sync
        from opportunities.sync.service import salesforce_client, sync_cycle_run
        from people.models import Person

        client = salesforce_client()
        from django.utils import timezone

        for sobject in engine.SYNCED_OBJECTS:
            field_definitions_sync(client.describe(sobject), now=timezone.now())
        fields = {s: active_fields(s) for s in engine.SYNCED_OBJECTS}

        # Floor 1: page every row the sync reads, through REST, writing nothing.
        started = time.monotonic()
        pages: dict[str, list[list[dict]]] = {}
        rows = 0
        for sobject in engine.SYNCED_OBJECTS:
            soql = engine.window_soql(sobject, fields[sobject], engine.EPOCH, timezone.now())
            pages[sobject] = list(client.query_all(soql))
            rows += sum(len(p) for p in pages[sobject])
        paging = time.monotonic() - started

        # Floor 2: bulk-insert the same rows, with only the column mapping.
        from opportunities.sync.apply import parse_record

        started = time.monotonic()
        model: Any
        for sobject, model, columns, key in (
            ("Contact", Person, CONTACT_COLUMNS, "sf_contact_id"),
            ("Lead", Person, LEAD_COLUMNS, "sf_lead_id"),
            ("Opportunity", Opportunity, OPPORTUNITY_COLUMNS, "sf_id"),
        ):
            for page in pages[sobject]:
                objects = []
                for raw in page:
                    parsed = parse_record(raw, fields[sobject])
                    values, custom = split_values(parsed, columns, model)
                    objects.append(model(**{key: parsed["Id"]}, custom_fields=custom, **values))
                model.objects.bulk_create(objects, batch_size=1000)
        for page in pages["OpportunityContactRole"]:
            ContactRole.objects.bulk_create(
                [
                    ContactRole(
                        sf_id=r["Id"],
                        sf_opportunity_id=r["OpportunityId"],
                        sf_contact_id=r.get("ContactId") or "",
                        role=r.get("Role") or "",
                        is_primary=bool(r.get("IsPrimary")),
                    )
                    for r in page
                ],
                batch_size=1000,
            )
        inserting = time.monotonic() - started
        for table in (Activity, ContactRole, Opportunity, Person):
            table.objects.all().delete()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM")

        # The sync itself: an initial load from nothing.
        started = time.monotonic()
        cycle = sync_cycle_run()
        syncing = time.monotonic() - started
        assert cycle is not None and cycle.status == "succeeded", cycle and cycle.error_message
        floors = paging + inserting
        print(
            f"[{database}] rows: {rows:,}  paging_floor_s: {paging:.1f}  insert_floor_s: {inserting:.1f}  "
            f"sync_s: {syncing:.1f}  sync_records_per_s: {rows / syncing:,.0f}  "
            f"ratio_to_floors: {syncing / floors:.2f} (target <= 1.5)  api_calls: {cycle.api_calls}",
            flush=True,
        )
    finally:
        process.stop()


def _port() -> int:
    from bench.common import free_port

    return free_port()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_database(args.data_dir, args.one)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="oppsync-bench-throughput-"))
    from salesforce_emulator.generator import generate_org
    from salesforce_emulator.store import Store

    store = Store(data_dir / "org.sqlite3")
    summary = generate_org(store, opportunities=args.opportunities)
    store.db.close()
    print(f"org: {summary}", flush=True)
    for database in args.databases.split(","):
        subprocess.run(
            [sys.executable, "-m", "bench.sync_throughput", "--one", database, "--data-dir", str(data_dir)],
            check=True,
        )


if __name__ == "__main__":
    main()
