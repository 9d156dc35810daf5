"""A process that ends with another: a job's training with its worker, a worker with its server,
the processes of a distributed run with their launcher."""

from __future__ import annotations

import os
import signal
import threading
import time


def die_with_parent(parent: int) -> None:
    """End this process when process `parent` ends: at once on Linux (prctl PR_SET_PDEATHSIG, for
    a direct child), and within a second anywhere (a watch thread; also for a forked grandchild)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass

    def watch():
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()
