"""The per-user sync log (DESIGN.md §4), below every app.

- `models`: each user's `UserSequence` and `SyncEntry` log, and the entry kinds
  (the wire vocabulary of docs/protocol.md's sync entries).
- `log`: sequence allocation, entry append, and the notify that follows commit.

Any app appends entries through `log` (accounts: contacts and registration;
grayrelease: flag pushes; messaging: conversation events, reads). This package
imports no app: that is what lets every app sit above it.
"""
