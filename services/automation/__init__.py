"""Automation: use cases, maturity levels, guardrails, change windows, actuators, execution."""
