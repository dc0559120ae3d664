"""``python -m runner._forkserver <socket fd>``: the fork server (:mod:`runner._forkserver.server`)."""

from __future__ import annotations

import os
import sys

from runner._forkserver.server import main

if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Only the server gets here (a child exits in run_child), its children reaped and
    # nothing of its own to clean up: skip the interpreter's teardown, which the driver's
    # shutdown would wait for.
    os._exit(code)
