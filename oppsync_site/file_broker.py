"""Kombu's file-system transport with an atomic put: the embedded default broker (no Redis).

Kombu's own `_put` creates the message file and then writes it, so a worker polling the folder
can move and read the file in between and crash on an empty message (JSONDecodeError), which
stops the worker. Here a message is written under a name the reader ignores and renamed into
place, which is atomic on one file system: a reader sees a whole message or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "oppsync-filesystem"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]  # as kombu's own
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # not `<queue>.msg`: the reader skips it until the rename
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> str:
    """Make `oppsync-filesystem://` a broker URL kombu understands; returns the URL."""
    TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
    return f"{ALIAS}://"
