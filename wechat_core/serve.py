"""Run the ASGI server named by ASGI_SERVER (daphne, uvicorn or granian) on HOST:PORT.

`python -m wechat_core.serve` is what the Procfile's web process, `make run`
and the tests' servers run. daphne
serves one process per invocation; uvicorn and granian start WEB_CONCURRENCY
workers on a shared socket. docs/deploy.md says how to run more of either.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def command(
    *,
    server: str,
    host: str,
    port: int,
    max_message_bytes: int,
    workers: int = 1,
    compression: bool = False,
    websocket_protocol: str = "wsproto",
    access_log: bool = False,
) -> list[str]:
    """The server's command line, with every setting that bears on security.

    Neither server reads proxy headers itself: both report the TCP peer, and
    wechat_core.api.request applies the one NUM_PROXIES rule to HTTP and
    websockets alike (daphne's --proxy-headers believed the leftmost
    X-Forwarded-For of any peer; uvicorn believes it from loopback by default).
    A websocket message over `max_message_bytes` is refused at the socket
    (close 1009) instead of being buffered first (uvicorn's default is 16 MiB).
    daphne runs through wechat_core.daphne_main, so that its access log goes
    through logging and its redaction (ACCESS_LOG switches it, read there).
    """
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "wechat_core.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            websocket_protocol,
            f"--ws-per-message-deflate={str(compression).lower()}",
            "--ws-max-size",
            str(max_message_bytes),
            "--access-log" if access_log else "--no-access-log",
            "--no-proxy-headers",
            "--lifespan",
            "off",
        ]
    if server == "granian":
        # Measured against uvicorn (docs/performance.md), not the default. It has
        # no limit of its own on a websocket message's size; the protocol's frame
        # limit (MESSAGING_MAX_FRAME_BYTES) still refuses a large frame.
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--ws",
            "--access-log" if access_log else "--no-access-log",
            "wechat_core.asgi:application",
        ]
    return [
        sys.executable,
        "-m",
        "wechat_core.daphne_main",
        "-b",
        host,
        "-p",
        str(port),
        "--websocket-max-message-size",
        str(max_message_bytes),
        "--websocket-max-frame-size",
        str(max_message_bytes),
        "wechat_core.asgi:application",
    ]


def listening(host: str, port: int) -> bool:
    """Does something accept connections on host:port (the server is serving)?"""
    address = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host  # noqa: S104
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def serve_and_announce(argv: list[str], *, host: str, port: int, banner: str) -> int:
    """Run the server as a child; print `banner` once it accepts connections (not
    before: `make run` used to say "Serving" while the server still loaded), pass
    SIGINT and SIGTERM on, and exit with its status."""
    child = subprocess.Popen(argv)  # noqa: S603 - our own server command line
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda received, _frame: child.send_signal(received))
    while child.poll() is None and not listening(host, port):
        time.sleep(0.2)
    if child.poll() is None:
        print(banner, flush=True)
    return child.wait()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")
    from django.conf import settings

    argv = command(
        server=settings.ASGI_SERVER,
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WEB_CONCURRENCY,
        compression=settings.WEBSOCKET_COMPRESSION,
        websocket_protocol=settings.UVICORN_WEBSOCKET_PROTOCOL,
        max_message_bytes=settings.WEBSOCKET_MAX_MESSAGE_BYTES,
        access_log=settings.ACCESS_LOG,
    )
    # `--announce-file PATH`: print that file's text once the server is serving.
    if sys.argv[1:2] == ["--announce-file"] and len(sys.argv) > 2:
        banner = Path(sys.argv[2]).read_text(encoding="utf-8").rstrip("\n")
        sys.exit(serve_and_announce(argv, host=settings.HOST, port=settings.PORT, banner=banner))
    os.execv(argv[0], argv)  # noqa: S606 - replace this process with the server


if __name__ == "__main__":
    main()
