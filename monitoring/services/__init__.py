"""Monitoring's writes: history, alert lifecycle, notifications, the traffic guard."""
