"""Health and Status: the guardrail scan, the batch signature generator, dashboard figures.

:func:`run_scan` judges every record a signature configuration makes eligible and
:func:`history.save` keeps the last scan for the dashboard; :func:`batch_sign` signs
the records an (edited) scan CSV lists, in update-set batches; :mod:`.figures` and
:mod:`.charts` feed the dashboard pages.
"""

from .batchreport import BatchSet, BatchSummary, Outcome
from .batchsign import batch_sign
from .csvin import ListedRow, parse_scan_csv
from .results import CSV_COLUMNS, ScanResult, ScanRow, csv_text, report_text, write_csv
from .scan import run_scan

__all__ = [
    "CSV_COLUMNS",
    "BatchSet",
    "BatchSummary",
    "ListedRow",
    "Outcome",
    "ScanResult",
    "ScanRow",
    "batch_sign",
    "csv_text",
    "parse_scan_csv",
    "report_text",
    "run_scan",
    "write_csv",
]
