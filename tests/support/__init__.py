"""Reusable test infrastructure (test doubles and their helpers)."""
