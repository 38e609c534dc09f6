"""Reliability suite: each promise of shared/RELIABILITY.md as a test with a number."""
