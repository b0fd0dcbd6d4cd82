"""`python -m oppsync_site.worker_launcher celery -A oppsync_site worker ...`: run a Celery worker so
that Ctrl-C stops it cleanly under honcho (the `Procfile`s).

honcho stops a process by signalling its whole process group, so each of Celery's pool processes
got SIGTERM directly and the worker logged an ERROR for every one of them. Here the worker runs in
a session of its own and only its main process is told to stop: it finishes its tasks (a warm
shutdown) and stops its pool itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    if not argv:
        print(
            "usage: python -m oppsync_site.worker_launcher celery -A oppsync_site worker ...", file=sys.stderr
        )
        return 2
    worker = subprocess.Popen(argv, start_new_session=True)  # noqa: S603  # the Procfile's own command line

    def forward(signum: int, frame: FrameType | None) -> None:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown, for Ctrl-C and SIGTERM alike

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return worker.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
