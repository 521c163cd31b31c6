"""Writes of gray release, one module per sub-domain:

- changes: the audit record of every change, its publication to every process
  and, for client-visible features, the push to signed-in devices
- features: create, edit, kill, delete features
- schedule: rollout schedules (start, pause, resume) and their advance by beat
- windows: time windows opening and closing, told to clients by beat
- push: writing flag entries into the sync logs of users a change affects
- guard: rollout guards judging treated against control outcomes, by beat
"""
