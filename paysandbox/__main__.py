"""`python -m paysandbox`: serve the sandbox until interrupted.

The merchant key is read from an environment variable (--key-env, PAY_MCH_KEY by
default, the same the product reads), never from the command line, where every
user of the machine could read it; --env-file reads KEY=value lines first,
without overriding the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from paysandbox.api import Context
from paysandbox.notifier import WECHAT_BACKOFF, Notifier
from paysandbox.server import SandboxServer
from paysandbox.store import Merchant, Store


def _read_env_file(path: Path) -> None:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, equals, value = line.strip().partition("=")
        if equals and name and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def _backoff(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError("comma-separated seconds, e.g. 1,2,5") from error
    if not delays or min(delays) < 0:
        raise argparse.ArgumentTypeError("at least one delay, none negative")
    return delays


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m paysandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--appid", default=os.environ.get("PAY_APPID", "wxd930ea5d5a258f4f"))
    parser.add_argument("--mch-id", default=os.environ.get("PAY_MCH_ID", "10000100"))
    parser.add_argument("--merchant-name", default="WeChat-style wallet (sandbox)")
    parser.add_argument("--key-env", default="PAY_MCH_KEY", help="variable holding the key")
    parser.add_argument("--env-file", type=Path, default=None, help="KEY=value lines to read")
    parser.add_argument(
        "--notify-backoff",
        type=_backoff,
        default=WECHAT_BACKOFF,
        help="seconds between notification attempts (default: WeChat's, about 24 h)",
    )
    parser.add_argument("--public-url", default="", help="base URL of pay pages for browsers")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s paysandbox: %(message)s")
    options = arguments(argv)
    if options.env_file is not None:
        _read_env_file(options.env_file)
    key = os.environ.get(options.key_env, "")
    if len(key) < 16:
        sys.exit(f"paysandbox: set the merchant key (16+ characters) in ${options.key_env}")
    store = Store(Merchant(options.appid, options.mch_id, key, options.merchant_name))
    notifier = Notifier(store, options.notify_backoff)
    server = SandboxServer((options.host, options.port), Context(store, notifier, ""))
    port = server.server_address[1]
    server.context.public_url = (options.public_url or f"http://{options.host}:{port}").rstrip("/")
    notifier.start()
    # The first line tells a parent process (tests, make run) where we listen.
    print(f"paysandbox listening on {server.context.public_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
