"""Data centres (seed 000, 阶段五; DESIGN.md §9; issue 17): who is home where.

Each user's data is mastered in their home data centre; writes happen only there.
The deployment's data centres are a setting (`DATACENTERS`: name, index, public
HTTP endpoints); with it empty (one data centre, the embedded mode) nothing here
refuses anything.

Row ids tell their origin: data centre `index` allocates the ids of every table
from index * ID_BLOCK (`sequences_partition`, run after migrating), so a ticket
presented in the wrong data centre names its home without any lookup, and rows
replicated from elsewhere keep their ids without colliding.

A request that belongs elsewhere gets `HomeElsewhere`: HTTP 421 `home_elsewhere`
with the home's name and endpoints, or on the websocket a `home` frame and close
CLOSE_HOME (docs/protocol.md §2b).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import connection

from wechat_core.errors import ServiceError
from wechat_core.metrics import counter

ID_BLOCK = 10**12  # ids of data centre `index` start at index * ID_BLOCK (below 2^53)
CLOSE_HOME = 4021  # home is another data centre: reconnect to the `home` frame's endpoints

HOME_REDIRECTS = counter(
    "datacenter_home_redirects_total",
    "Logins, requests and websockets sent to the user's home data centre, by home.",
    ["home"],
    process_labels=True,
)


def enabled() -> bool:
    """True when the deployment has several data centres (DATACENTERS is set)."""
    return bool(settings.MULTI_DATACENTER)


def here() -> str:
    return str(settings.DATACENTER)


def index_of(name: str) -> int:
    return int(settings.DATACENTERS[name]["index"]) if enabled() else 0


def peers() -> list[str]:
    """The other data centres, by name."""
    return [name for name in settings.DATACENTERS if name != here()]


def endpoints_of(name: str) -> list[str]:
    """The public HTTP base URLs of data centre `name`."""
    if not enabled() or name not in settings.DATACENTERS:
        return []
    return list(settings.DATACENTERS[name]["endpoints"])


def websocket_endpoints_of(name: str) -> list[str]:
    return [url.replace("http", "ws", 1) + "/ws/sync" for url in endpoints_of(name)]


def origin_of_id(row_id: int) -> str | None:
    """The data centre whose id block holds `row_id` (None: not a known block)."""
    block = row_id // ID_BLOCK
    for name, spec in settings.DATACENTERS.items():
        if int(spec["index"]) == block:
            return str(name)
    return None


class HomeElsewhere(ServiceError):
    """The user's data is mastered in another data centre: go there."""

    status: ClassVar[int] = 421
    code: ClassVar[str] = "home_elsewhere"
    default_message = "Your home is another data centre: connect to one of its endpoints."

    def __init__(self, home: str) -> None:
        self.home = home
        super().__init__(
            details={
                "datacenter": home,
                "endpoints": endpoints_of(home),
                "websocket_endpoints": websocket_endpoints_of(home),
            }
        )


def require_home(home: str) -> None:
    """Raise HomeElsewhere unless `home` is this data centre (always passes with one)."""
    if enabled() and home != here():
        HOME_REDIRECTS.inc(home)
        raise HomeElsewhere(home)


def require_local_id(row_id: int) -> None:
    """Rows of users' own data (tickets) are made at home: one from another data
    centre's block means the client came to the wrong one."""
    if not enabled():
        return
    origin = origin_of_id(row_id)
    if origin is not None:
        require_home(origin)


def home_frame(error: HomeElsewhere) -> dict[str, Any]:
    """The websocket's `home` frame (docs/protocol.md §2b)."""
    return {
        "type": "home",
        "code": error.code,
        "message": error.message,
        "datacenter": error.home,
        "endpoints": websocket_endpoints_of(error.home),
        "http_endpoints": endpoints_of(error.home),
        "retry": {"resume": "sync_key"},
    }


def sequences_partition() -> list[str]:
    """Move every id sequence of this database below this data centre's block up to
    its start (idempotent; PostgreSQL only). Returns the sequences moved."""
    if not enabled() or connection.vendor != "postgresql":
        return []
    start = index_of(here()) * ID_BLOCK
    if start == 0:
        return []
    moved = []
    with connection.cursor() as cursor:
        cursor.execute(
            # Django's own integer-keyed tables (content types, permissions) stay
            # local and below 2^31: only bigint sequences are moved.
            "SELECT schemaname, sequencename, COALESCE(last_value, 0) FROM pg_sequences "
            "WHERE schemaname = current_schema() AND max_value >= %s",
            [start + ID_BLOCK],
        )
        for schema, name, last_value in cursor.fetchall():
            if int(last_value) < start - 1:  # next value: start (as called at start - 1)
                cursor.execute("SELECT setval(%s, %s)", [f'"{schema}"."{name}"', start - 1])
                moved.append(str(name))
    return moved
