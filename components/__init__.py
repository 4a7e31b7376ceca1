"""Reusable UI: functions that take data and return components or figures (no I/O)."""
