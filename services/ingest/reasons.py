"""Every reason a record or payload can be refused: a machine code and a human sentence."""

from __future__ import annotations

REASONS: dict[str, str] = {
    # Record-level, checked by the validation rules (services.ingest.validate).
    "missing_dn": "the record names no network element",
    "dn_too_long": "the element's distinguished name is longer than 512 characters",
    "attribute_too_long": "the vendor or software version is longer than 64 characters",
    "bad_timestamp": "the period end is missing or not a timestamp",
    "future_timestamp": "the period end lies in the future beyond the allowed clock skew",
    "too_old": "the period end is older than the retention period",
    "unknown_counter": "the counter is not mapped to a Beacon KPI (kept; replay after mapping)",
    "missing_value": "the value is empty",
    "not_numeric": "the value is not a number",
    "out_of_range": "the value is outside the KPI's valid range",
    "unit_mismatch": "the record's unit differs from the KPI's unit and no conversion is known",
    # Payload-level, found by parsers before records exist.
    "malformed_payload": "the payload cannot be parsed (not well-formed XML, JSON or CSV)",
    "unsafe_xml": "the XML declares a DTD or entities, which Beacon refuses",
    "unsupported_format": "the payload is not in a format this input accepts",
    "missing_field": "a mandatory field is missing or empty",
    "schema_invalid": "the payload does not validate against its published schema",
    "schema_reference_unresolved": "the payload's schemaReference does not resolve to a schema",
    "mixed_domains": "a batch mixes event domains (one domain per batch)",
    "mixed_namespaces": "a stndDefined batch mixes stndDefinedNamespace values",
    "unsupported_event": "the event domain carries nothing Beacon stores",
    "mixed_sources": "a TMF642 batch mixes sourceSystemId values (one source system per batch)",
    "payload_too_large": "the payload (decompressed) is larger than Beacon accepts",
    # Value-level, found by parsers while reading a file (3GPP PM XML).
    "unknown_counter_position": "the value's position (p) names no counter of its measInfo",
    "result_count_mismatch": "measResults holds a different number of values than measTypes",
    # Event-level, found while storing VES events.
    "no_measurements": "the measurement event carries no values Beacon can read",
    "internal_error": "Beacon failed while reading the payload (kept for replay once fixed)",
}


def sentence(code: str) -> str:
    """The human sentence for a reason code (the code itself when unknown)."""
    return REASONS.get(code, code.replace("_", " "))
