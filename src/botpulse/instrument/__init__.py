"""Instrumentation of DB drivers, Redis and HTTP clients (``botpulse.instrument``)."""
