"""Metrics: one module per metric; pure functions hold the maths, a thin class declares needs."""
