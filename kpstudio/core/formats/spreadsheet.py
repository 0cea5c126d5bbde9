"""CSV cells a spreadsheet will not run: one rule for every CSV kpstudio writes.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (``=HYPERLINK(...)``, ``-2+3+cmd|' /C calc'!A0``), and a leading tab or
carriage return can hide such a start. A keypoint name or an image path comes from files other
people wrote, so OWASP's rule applies to every text cell: prefix those with a single quote,
which spreadsheets show as text. Genuine numbers such as ``-3.5`` stay numbers.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: object) -> object:
    """`value` ready for csv.writer: text a spreadsheet would run as a formula gets a leading
    ``'``; numbers (and text that is a plain number) pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values) -> list:
    """csv_cell applied to each cell of a row."""
    return [csv_cell(v) for v in values]


def read_csv_cell(text: str) -> str:
    """The inverse for our own files read back: ``'=x`` → ``=x`` (and nothing else changed)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
