"""Writes of the official accounts platform, one module per sub-domain:

- accounts: creating accounts, server configuration and its handshake, secrets,
  greetings and keyword replies
- followers: follow, unfollow, menu taps (with their events)
- webhooks: pushes to developers' servers, their attempts, the failure notice
- replies: turning passive replies, keyword replies and API messages into chat messages
- developer_api: access tokens, customer-service and template messages
- mass: mass sends, in Celery batches, with MASSSENDJOBFINISH
- menus: custom menus, validated on create, looked up on tap
"""
