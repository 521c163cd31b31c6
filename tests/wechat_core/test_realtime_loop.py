"""Publishing from the event loop (wechat_core.realtime.publish_from_loop), on the
production channel layer (Redis pub/sub) of this test process.

Given a process hub listening to three users' groups, when code on the loop
publishes notifies (two for one user in the same moment, as a group commit's
batch may) and a revocation, then every listener hears its own group's messages:
the newest notify only where two were pending together, and the revocation
beside the notify; none hears another group's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer  # type: ignore[import-untyped]

from wechat_core.realtime import ProcessHub, publish_from_loop


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "not heard within 30 s"
        await asyncio.sleep(0.01)


def test_publish_from_loop__a_batch__reaches_each_group_coalesced() -> None:
    async def main() -> dict[str, list[dict[str, Any]]]:
        # given
        layer = get_channel_layer()
        assert type(layer).__name__ == "RedisPubSubChannelLayer"
        hub = ProcessHub(layer)
        groups = [f"user.test-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        heard: dict[str, list[dict[str, Any]]] = {group: [] for group in groups}
        for group in groups:
            await hub.join(group, heard[group].append)
        # when: published in one step of the loop
        a, b, c = groups
        publish_from_loop(a, {"type": "sync.notify", "seq": 5})
        publish_from_loop(b, {"type": "sync.notify", "seq": 3})
        publish_from_loop(a, {"type": "sync.notify", "seq": 7})
        publish_from_loop(b, {"type": "ticket.revoked", "tickets": [11]})
        publish_from_loop(c, {"type": "sync.notify", "seq": 1})
        await _until(lambda: sum(map(len, heard.values())) >= 4)
        # Redis delivers in order on the hub's one connection: once a later message
        # is heard, anything more from the batch (a second notify) would have been.
        publish_from_loop(a, {"type": "end"})
        await _until(lambda: any(m["type"] == "end" for m in heard[a]))
        heard[a].pop()
        for group in groups:
            hub.leave(group, heard[group].append)
        return {name: heard[group] for name, group in zip("abc", groups, strict=True)}

    heard = asyncio.run(main())
    # then
    assert [(m["type"], m.get("seq")) for m in heard["a"]] == [("sync.notify", 7)]
    assert [(m["type"], m.get("seq"), m.get("tickets")) for m in heard["b"]] == [
        ("sync.notify", 3, None),
        ("ticket.revoked", None, [11]),
    ]
    assert [(m["type"], m.get("seq")) for m in heard["c"]] == [("sync.notify", 1)]
