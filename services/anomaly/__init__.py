"""Anomaly detection: pure detectors, the scheduled service that persists episodes, feeds."""
