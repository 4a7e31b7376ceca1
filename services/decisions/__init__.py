"""Humans in charge: recommendations, decisions, the disagreement queue, reviews, demo history."""
