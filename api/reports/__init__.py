"""Compliance reports for the authority: daily and monthly, as CSV and as PDF.

A report shows what the live compliance engine stored (``compliance_sta``,
``compliance_daily``, ``compliance_period``, ``compliance_events``); it computes nothing the
engine did not, apart from judging stored averages against the configured limits and counting.
:func:`~api.reports.data.load_report` reads one period, :func:`~api.reports.csv.to_csv` and
:func:`~api.reports.pdf.to_pdf` render it. Both renderers are pure functions of the loaded data,
so the API and ``stackwatch report`` produce the same files.
"""

from api.reports.data import (
    ComplianceReportData,
    FuturePeriodError,
    ReportError,
    ReportFormat,
    ReportKind,
    UnknownPlantError,
    load_report,
    parse_month,
)

__all__ = [
    "ComplianceReportData",
    "FuturePeriodError",
    "ReportError",
    "ReportFormat",
    "ReportKind",
    "UnknownPlantError",
    "load_report",
    "parse_month",
]
