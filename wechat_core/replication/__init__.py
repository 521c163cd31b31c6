"""Replication between data centres (seed 000, 阶段五; DESIGN.md §9; issue 17).

Every user's data is written only at their home data centre; what the other data
centres need of it goes, in the same transaction, into the outbox
(`log.replicate`). A relay process per data centre (`manage.py replication_relay`)
numbers the outbox entries and ships them, in batches, to one RabbitMQ quorum
queue per peer (Raft-replicated: a publish is confirmed once a majority of the
queue's replicas hold it). A replay process in each peer (`manage.py
replication_replay`) applies them in order per origin, each in a transaction
that also moves the origin's replay position: redelivered entries are skipped,
so delivery is at least once and the effect exactly once.

- `models`: the outbox, replay positions and replay errors.
- `log`: `replicate` (write an entry), the handler registry apps fill
  (`replay_handler_register`), and `entry_apply` (one entry, idempotently).
- `broker`: the queues, the relay loop and the replay loop.
- `selectors`: backlog, positions and lag, for monitoring and operators.
"""
