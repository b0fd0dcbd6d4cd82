"""Benchmark: generate a large org in the emulator, then page every opportunity through REST.

    .venv/bin/python -m bench.emulator_paging --opportunities 1000000

Prints the generation time and the REST paging rate (records per second) as simple-salesforce
sees it over HTTPS.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import requests
from simple_salesforce import Salesforce

from salesforce_emulator.control import EmulatorProcess
from salesforce_emulator.generator import generate_org
from salesforce_emulator.store import Store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="oppsync-bench-"))

    store = Store(data_dir / "org.sqlite3")
    started = time.monotonic()
    last_report = [started]

    def progress(sobject: str, count: int) -> None:
        if time.monotonic() - last_report[0] > 15:
            last_report[0] = time.monotonic()
            print(
                f"  ... {sobject}: {store.count(sobject):,} after {time.monotonic() - started:.0f}s",
                flush=True,
            )

    summary = generate_org(store, opportunities=args.opportunities, progress=progress)
    generation_seconds = time.monotonic() - started
    store.db.close()
    size_mb = (data_dir / "org.sqlite3").stat().st_size / 1e6
    print(f"generated: {summary}")
    print(f"generation_seconds: {generation_seconds:.1f}  database_mb: {size_mb:.0f}")

    process = EmulatorProcess(data_dir, free_port())
    control = process.start()
    try:
        http = requests.Session()
        http.trust_env = False
        http.verify = str(process.ca_file)
        token = http.post(
            f"{process.instance_url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "oppsync-demo-client",
                "client_secret": "oppsync-demo-secret",
            },
            timeout=30,
        ).json()
        sf = Salesforce(
            instance_url=token["instance_url"], session_id=token["access_token"], session=http, version="59.0"
        )
        calls_before = control.api_calls()
        started = time.monotonic()
        count = 0
        soql = "SELECT Id, Name, StageName, Amount, Probability, CloseDate, IsClosed, IsWon, SystemModstamp FROM Opportunity ORDER BY SystemModstamp ASC, Id ASC"
        for _ in sf.query_all_iter(soql, include_deleted=True):
            count += 1
        paging_seconds = time.monotonic() - started
        print(
            f"paged_records: {count:,}  paging_seconds: {paging_seconds:.1f}  records_per_second: {count / paging_seconds:,.0f}  api_calls: {control.api_calls() - calls_before}"
        )
    finally:
        process.stop()


if __name__ == "__main__":
    main()
