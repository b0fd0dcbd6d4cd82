"""A client for the emulator: start it as a process, and drive its control API.

Used by the tests, the benchmarks and `make run`'s demo; not by the sync, which only speaks
Salesforce's API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


class EmulatorControl:
    def __init__(self, instance_url: str, ca_file: Path | str) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.ca_file = str(ca_file)
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE must not override our CA (salesforce-api.md §0.9)
        self.http.verify = self.ca_file

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None, **params: Any) -> Any:
        response = self.http.request(
            method,
            f"{self.instance_url}/__emulator__/{path}",
            json=payload,
            params=params or None,
            timeout=600,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"emulator {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def create(
        self, sobject: str, *records: dict[str, Any], backdate_seconds: float = 0, same_modstamp: bool = False
    ) -> list[str]:
        body = {
            "records": list(records),
            "backdate_seconds": backdate_seconds,
            "same_modstamp": same_modstamp,
        }
        return list(self._call("POST", f"records/{sobject}", body)["ids"])

    def update(
        self, sobject: str, *records: dict[str, Any], backdate_seconds: float = 0, same_modstamp: bool = False
    ) -> None:
        body = {
            "records": list(records),
            "backdate_seconds": backdate_seconds,
            "same_modstamp": same_modstamp,
        }
        self._call("PATCH", f"records/{sobject}", body)

    def delete(self, sobject: str, *ids: str, backdate_seconds: float = 0) -> None:
        self._call(
            "POST", f"records/{sobject}/delete", {"ids": list(ids), "backdate_seconds": backdate_seconds}
        )

    def undelete(self, sobject: str, *ids: str) -> None:
        self._call("POST", f"records/{sobject}/undelete", {"ids": list(ids)})

    def records(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return list(self._call("GET", f"records/{sobject}", include_deleted=int(include_deleted))["records"])

    def refresh_token(self, client_id: str) -> str:
        return str(self._call("POST", "oauth/refresh-token", {"client_id": client_id})["refresh_token"])

    def faults(self, **spec: Any) -> None:
        self._call("POST", "faults", spec)

    def clear_faults(self) -> None:
        self._call("POST", "faults", {"clear": True})

    def add_field(self, sobject: str, name: str, field_type: str = "string", **extra: Any) -> None:
        self._call("POST", "fields", {"sobject": sobject, "name": name, "type": field_type, **extra})

    def hide_field(self, sobject: str, field: str, hidden: bool = True) -> None:
        self._call("POST", "fields/hide", {"sobject": sobject, "field": field, "hidden": hidden})

    def set_values_silently(self, sobject: str, field: str, values: dict[str, Any]) -> None:
        self._call("POST", "fields/values", {"sobject": sobject, "field": field, "values": values})

    def set_visible(self, sobject: str, ids: list[str], visible: bool) -> None:
        self._call("POST", "visibility", {"sobject": sobject, "ids": ids, "visible": visible})

    def multi_currency(self, enabled: bool = True) -> None:
        self._call("POST", "multi-currency", {"enabled": enabled})

    def purge(self) -> str:
        return str(self._call("POST", "purge", {})["earliestDateAvailable"])

    def merge(self, sobject: str, master_id: str, *loser_ids: str) -> None:
        self._call(
            "POST", "merge", {"sobject": sobject, "master_id": master_id, "loser_ids": list(loser_ids)}
        )

    def convert_lead(self, lead_id: str, **options: Any) -> dict[str, Any]:
        return dict(self._call("POST", "convert-lead", {"lead_id": lead_id, **options}))

    def generate(self, opportunities: int, people: int | None = None, seed: int = 1) -> dict[str, Any]:
        return dict(
            self._call("POST", "generate", {"opportunities": opportunities, "people": people, "seed": seed})
        )

    def sales_team(self, rate: float) -> None:
        self._call("POST", "sales-team", {"rate": rate})

    def sales_team_act(self, times: int = 1) -> list[str]:
        return list(self._call("POST", "sales-team/act", {"times": times})["did"])

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def api_calls(self) -> int:
        return int(self.stats()["api_usage"]["used"])


class EmulatorProcess:
    """`python -m salesforce_emulator` in a process of its own, on a port of its own."""

    def __init__(
        self, data_dir: Path, port: int, *, log: Path | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.log = log or self.data_dir / "emulator.log"
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def instance_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca.pem"

    def start(self, timeout: float = 120) -> EmulatorControl:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "salesforce_emulator",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603  # our own module, fixed arguments
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited: {self.log.read_text()[-3000:]}")
            if self.ca_file.exists():
                control = EmulatorControl(self.instance_url, self.ca_file)
                try:
                    control.stats()
                    return control
                except (requests.ConnectionError, RuntimeError):
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"the emulator did not start in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
