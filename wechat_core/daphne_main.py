"""daphne's command line, with its access log written through logging.

daphne's own access log writes each request line straight to stdout, query
string included, so `GET /cgi-bin/token?...&secret=...` reached the log in
clear: no logging filter ever saw it. Here the same lines go to the logger
`daphne.access`, through the redaction every record gets
(wechat_core.logging), and only when ACCESS_LOG is on. Everything else is
daphne's CLI unchanged; wechat_core.serve starts it as
`python -m wechat_core.daphne_main <daphne's arguments>`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server

logger = logging.getLogger("daphne.access")


class LoggedAccessLog(AccessLogGenerator):  # type: ignore[misc]
    """daphne's access-log lines (NCSA-like), as records of `daphne.access`."""

    def __init__(self) -> None:
        super().__init__(stream=None)

    def write_entry(
        self,
        host: str,
        date: Any,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        logger.info(
            '%s %s %s "%s" %s %s',
            host,
            ident or "-",
            user or "-",
            request,
            status or "-",
            length or "-",
        )


class LoggedAccessServer(Server):  # type: ignore[misc]
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        # The application (and so Django's settings) is loaded before the server.
        from django.conf import settings

        logged = LoggedAccessLog() if settings.ACCESS_LOG else None
        super().__init__(*args, action_logger=logged, **kwargs)


class LoggedAccessCommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = LoggedAccessServer


def main() -> None:
    LoggedAccessCommandLine().run(sys.argv[1:])


if __name__ == "__main__":
    main()
