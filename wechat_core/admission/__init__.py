"""Admission control (FastReject, issue 13; docs/overload.md): overload detected from
queuing time, requests refused by (business priority, user priority) at once and
cheaply, Celery tasks dropped past their deadline.

- priorities: the business priority tables (by route, frame type) and user priority.
- controller: the per-process admission level (DAGOR).
- http: the ASGI wrapper that refuses, and the middleware that measures.
- websocket: the frame check and the heartbeat tier.
- probes: event loop lag and thread pool queue.
- celery: deadlines at publish, drops counted in the worker.
- metrics: what monitoring shows.
"""
