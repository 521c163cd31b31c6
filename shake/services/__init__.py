"""Writes of shake activities: activities (planning and approval), reserving and
recording issued prizes (the access processes' durable side), opening and paying."""
