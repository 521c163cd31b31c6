"""Run the ASGI server named by ASGI_SERVER (daphne or uvicorn) on HOST:PORT.

`python -m wechat_core.serve` is what the Procfile's web process runs. daphne
serves one process per invocation; uvicorn starts WEB_CONCURRENCY workers on a
shared socket. docs/deploy.md says how to run more of either.
"""

from __future__ import annotations

import os
import sys


def command(
    *,
    server: str,
    host: str,
    port: int,
    workers: int = 1,
    compression: bool = False,
    websocket_protocol: str = "wsproto",
) -> list[str]:
    """The server's command line; tests and benchmarks start servers with it too."""
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "wechat_core.asgi:application",
            "--host", host, "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--http", "httptools", "--ws", websocket_protocol,
            f"--ws-per-message-deflate={str(compression).lower()}",
            "--no-access-log", "--proxy-headers", "--lifespan", "off",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
        "--proxy-headers", "wechat_core.asgi:application",
    ]  # fmt: skip


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
    )
    os.execv(argv[0], argv)  # noqa: S606 - replace this process with the server


if __name__ == "__main__":
    main()
