"""Parsers for the standard inputs: 3GPP PM XML, ONAP VES, CSV/JSON telemetry."""
