"""`python -m oppsync_site.stack start -f Procfile`: honcho, waiting up to 30 s (not its 5) for
the processes to stop after Ctrl-C, so a Celery worker finishes its warm shutdown (returning the
messages it held to the broker) instead of being killed halfway."""

from __future__ import annotations

import sys

import honcho.manager
from honcho.command import main

STOP_WAIT_SECONDS = 30

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = STOP_WAIT_SECONDS  # a module constant honcho reads when stopping
    sys.exit(main(sys.argv[1:]))
