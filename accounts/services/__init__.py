"""Writes of the accounts app, one module per sub-domain:

- registration: new accounts
- login: credentials, brute-force protection, logout
- devices: the devices a user logged in from
- profile: nickname, avatar, region, signature, discoverability
- wechat_ids: the global WeChat ID allocation service
- contacts: friend requests, friends, remarks, blocks
"""
