"""Alerts that reach the office that must act: routing, digests, operator mail, the monthly report."""
