"""A client for the emulator: start it as a process, and drive its control API.

Used by the tests, the benchmarks and `make run`'s demo; not by the sync, which only speaks
Salesforce's API.
"""

from __future__ import annotations

import os
import signal
import socket
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

    # --- Change Data Capture and the Pub/Sub API (salesforce-api.md §5.1) --------------------------
    def pubsub(self, **spec: Any) -> dict[str, Any]:
        """`POST /__emulator__/pubsub`: the methods below; answers the selection, the channels,
        the latest replay position and the delivery counter."""
        return dict(self._call("POST", "pubsub", spec))

    def cdc_select(self, sobject: str, enabled: bool = True) -> None:
        """Select (or deselect) an object for Change Data Capture; default: the four of OppSync."""
        self.pubsub(select={sobject: enabled})

    def cdc_channel(self, name: str, *entities: str) -> None:
        """Define the custom channel `/data/<name>` (name ends in __chn) with these members."""
        self.pubsub(channel={"name": name, "entities": list(entities)})

    def cdc_retention(self, seconds: float) -> None:
        """How long events stay replayable (72 h by default); older ones are gone at once."""
        self.pubsub(retention_seconds=seconds)

    def pubsub_keepalive(self, seconds: float) -> None:
        self.pubsub(keepalive_seconds=seconds)

    def pubsub_drop_events(self, count: int) -> None:
        """The next `count` change events are lost: never published."""
        self.pubsub(drop_next=count)

    def pubsub_gap(self, sobject: str, change_type: str = "GAP_UPDATE", ids: list[str] | None = None) -> None:
        """Publish a GAP_* event for these ids (header only), or a GAP_OVERFLOW."""
        self.pubsub(gap={"sobject": sobject, "change_type": change_type, "ids": ids or []})

    def pubsub_stall(self, stalled: bool = True) -> None:
        """Open streams go silent: no events, no keepalives (until un-stalled)."""
        self.pubsub(stall=stalled)

    def pubsub_delay(self, milliseconds: float) -> None:
        """Events leave this much later than they are committed."""
        self.pubsub(delay_ms=milliseconds)

    def pubsub_reset(self, mode: str = "end") -> None:
        """End every open stream: "end" completes the call, "unavailable" fails it with UNAVAILABLE."""
        self.pubsub(reset=mode)

    def pubsub_expire_tokens(self) -> None:
        """Every access token expires: REST answers 401, open streams end with UNAUTHENTICATED."""
        self.pubsub(expire_tokens=True)

    def pubsub_deliveries(self, used: int | None = None, maximum: int | None = None) -> dict[str, int]:
        """Set the daily delivery counter (used >= max: subscriptions fail RESOURCE_EXHAUSTED)."""
        deliveries = {k: v for k, v in (("used", used), ("max", maximum)) if v is not None}
        return dict(self.pubsub(deliveries=deliveries)["deliveries"])

    def pubsub_exhaust_deliveries(self) -> None:
        used = self.pubsub_deliveries()
        self.pubsub_deliveries(used=used["max"])

    def pubsub_clear(self) -> None:
        """Clear the Pub/Sub faults (clear_faults does too)."""
        self.pubsub(clear=True)

    def latest_replay(self) -> int:
        """The newest event's position in the log (the emulator's, not a replay id)."""
        return int(self.pubsub()["latest_replay"])

    def pubsub_subscriptions(self) -> dict[str, Any]:
        """Subscribe calls so far: `by_preset` (LATEST, EARLIEST, CUSTOM counts) and
        `custom_starts` (per topic, the log position its latest CUSTOM subscription resumed from)."""
        state = self.pubsub()
        return {
            "started": int(state["subscriptions_started"]),
            "by_preset": dict(state["subscriptions_by_preset"]),
            "custom_starts": {topic: int(p) for topic, p in state["custom_starts"].items()},
        }


class EmulatorProcess:
    """`python -m salesforce_emulator` in a process of its own, on a port of its own."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        log: Path | None = None,
        extra_args: list[str] | None = None,
        pubsub_port: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        # The Pub/Sub API's port (always on when started from here): given, or a free one.
        self.pubsub_port = pubsub_port or _free_port()
        self.log = log or self.data_dir / "emulator.log"
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def instance_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def pubsub_url(self) -> str:
        """`host:port` of the Pub/Sub API, as SALESFORCE_PUBSUB_URL takes it."""
        return f"localhost:{self.pubsub_port}"

    def start(self, timeout: float = 120) -> EmulatorControl:
        """Start it and wait until its control API answers. A port that another process took
        between being found free and being bound (parallel test processes pick ports the same
        way) is replaced by a new free one, up to three times."""
        for attempt in range(3):
            logged = self.log.stat().st_size if self.log.exists() else 0
            try:
                return self._start(timeout)
            except RuntimeError:
                if self.process is not None and self.process.poll() is None:
                    raise  # it did not start for another reason: no retry
                with self.log.open("rb") as log:
                    log.seek(logged)
                    tail = log.read().decode(errors="replace")
                if attempt == 2 or not any(m in tail for m in ("address already in use", "cannot listen on")):
                    raise
                self.stop()  # a process whose other server bound may still be running
                self.port, self.pubsub_port = _free_port(), _free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> EmulatorControl:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "salesforce_emulator",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--pubsub-port",
            str(self.pubsub_port),
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
