"""Analysis: pure functions over store reads (reports; later regressions, findings, advice)."""

from __future__ import annotations

from .report import REPORT_SCHEMA, FlowTrace, OperationStats, Report, build_report
from .window import parse_moment, parse_window

__all__ = [
    "REPORT_SCHEMA",
    "FlowTrace",
    "OperationStats",
    "Report",
    "build_report",
    "parse_moment",
    "parse_window",
]
