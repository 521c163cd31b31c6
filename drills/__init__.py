"""DR drills (seed 000, 容灾拨测): block one campus while synthetic clients chat,
compare failures before and during, abort when they rise, record the report.

Its own app because a drill drives every layer at once: it makes users and
friendships (accounts), chats through the Python client (messaging) and reports
to monitoring (which keeps the DrDrill records, shows them at /monitoring/drills
and alerts on failed drills). Monitoring sits below messaging, so the runner
cannot live there; it stands beside publicplatform and wallet, above messaging."""
