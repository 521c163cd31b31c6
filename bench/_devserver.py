"""A fast developer server for the official-account benchmarks: WeRoBot's own app
under a threaded wsgiref server, in its own process.

    python bench/_devserver.py PORT TOKEN
"""

from __future__ import annotations

import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.devservers import werobot_robot


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    httpd = make_server("127.0.0.1", port, werobot_robot(token).wsgi, Threaded, Quiet)
    print("ready", flush=True)
    httpd.serve_forever()
