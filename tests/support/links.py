"""A network link a test can cut: a TCP relay between one data centre's processes and
the broker (issue 17's fault test: "the queue unreachable from one side").

    link = Link("127.0.0.1", 5672)   # the data centre connects to link.port
    link.cut()       # open connections are reset, new ones refused: the broker is gone
    link.restore()   # connections get through again
    link.stall()     # open connections go silent, new ones get through

A cut resets what is open and closes every new connection at once, as a firewall
rejecting the traffic would: the processes behind it see their connections fail
and keep retrying, exactly as they would with the broker out of reach.

A stall is a link that silently drops packets (or a broker that takes requests and
never answers): what either side of an open connection sends is lost, and neither
side hears of it, not even when the other closes; only a timeout of its own tells a
process. New connections get through (the route came back, or the next broker
node answers).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Link:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stalled: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._accepted = 0
        threading.Thread(target=self._accept, name=f"link-{self.port}", daemon=True).start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        self._cut = False

    def stall(self) -> None:
        with self._lock:
            self._stalled |= self._open

    @property
    def connections(self) -> int:
        """How many connections the link has let through so far."""
        return self._accepted

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if self._cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
                self._accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if source in self._stalled:
                    continue  # lost on the way
                sink.sendall(chunk)
        except OSError:
            pass
        if source in self._stalled:
            # The other side never learns: only this end goes (close() resets the rest).
            with self._lock:
                self._open.discard(source)
            _reset(source)
            return
        for sock in (source, sink):
            with self._lock:
                self._open.discard(sock)
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
