"""Django's PostgreSQL backend, whose psycopg pool replaces dead connections at once.

After a failover or a restart of PostgreSQL every idle connection of the pool
is dead. Without a check each would fail the one request it is handed to. With
Django's check (CONN_HEALTH_CHECKS) psycopg's pool tries a connection before
handing it out, but waits a growing back-off (0, 1, 2, 4 s...) after each one
that fails: a pool of dead connections held the first request for seconds, or
past DATABASE_POOL_TIMEOUT (a 500). Here the first failed check checks every
idle connection at once (`ConnectionPool.check`, which replaces the dead ones),
so the next attempt, without waiting, gets a live connection.

Everything else is Django's backend; settings select it as the ENGINE when
DATABASE_URL is a PostgreSQL URL.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg_pool import ConnectionPool

from wechat_core import reqtiming


class _PoolHolder:
    pool: ConnectionPool[Any] | None = None


def _pool_with_failover_check(**options: Any) -> ConnectionPool[Any]:
    holder = _PoolHolder()

    def check(connection: Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(connection)
        except Exception:
            if holder.pool is not None:
                holder.pool.check()  # the others died with it: replace them all now
            raise

    pool: ConnectionPool[Any] = ConnectionPool(check=check, **options)
    holder.pool = pool
    return pool


class DatabaseWrapper(base.DatabaseWrapper):
    # django-stubs do not declare the pool's attributes (Django 5.1+).
    @property
    def pool(self) -> ConnectionPool[Any] | None:
        pools: dict[str, ConnectionPool[Any]] = self._connection_pools  # type: ignore[attr-defined]
        options = self.settings_dict["OPTIONS"].get("pool")
        if options and self.alias != NO_DB_ALIAS and self.alias not in pools:
            # As Django builds its pool (not opened yet; Django opens it on first use),
            # with the check above. setdefault: the first thread to get here wins.
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True
            pool = _pool_with_failover_check(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                **(options if isinstance(options, dict) else {}),
            )
            pools.setdefault(self.alias, pool)
        return super().pool  # type: ignore[misc, no-any-return]

    def get_new_connection(self, conn_params: Any) -> Any:
        # With the pool, this is the wait for a free connection (benchmarks time it).
        with reqtiming.timed("db_wait"):
            return super().get_new_connection(conn_params)
