"""Tests of the ``botpulse`` command line."""
