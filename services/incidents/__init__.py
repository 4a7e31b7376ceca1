"""Incidents: lifecycle, timeline, triage, escalation and queries.

Modules: `states` (the status machine and its errors), `timeline` (events), `lifecycle`
(open from episodes, alarms, by hand or by heartbeats; acknowledge, mitigate, resolve),
`triage` (roles, notes, change windows, ticket, "AI involved" fields), `escalation` (the
runner that pages on-call step by step) and `queries` (list and detail).
"""
