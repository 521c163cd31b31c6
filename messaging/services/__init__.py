"""Writes of the messaging app, one module per sub-domain:

- delivery: writing a conversation's pending events into its members' logs
- sending: sending messages (idempotent), recall, read positions
- conversations: 1:1 chats and groups (create, invite, remove, leave, roles)
- attachments: uploads
- spam: the pluggable spam-filter step
"""
