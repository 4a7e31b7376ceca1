"""On-call: rotation maths, who is on call now, overrides and swaps, iCal export, demo seed.

Modules: `rotations` (pure schedule maths), `resolve` (schedules from the database and the
ownership map), `overrides` (audited overrides and shift swaps), `ical` (RFC 5545 export)
and `demo` (realistic demo teams).
"""
