"""What the relay and replay commands share: run until SIGTERM/SIGINT, idle with one
data centre (so the Procfile's lines are harmless there)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from wechat_core import datacenters


def run_until_signalled(loop: Callable[[threading.Event], None], write: Callable[[str], Any],
                        what: str) -> None:  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if not datacenters.enabled():
        write(f"One data centre (DATACENTERS is empty): no {what}; idle until stopped.")
        stop.wait()
        return
    write(f"{what} of data centre {datacenters.here()} for peers {datacenters.peers()}")
    loop(stop)
