"""Analyst overrides: the override ledger (exactly once, quarantined with reasons) and its monitoring."""
