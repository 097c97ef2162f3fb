"""The report as an Excel workbook (GET /class/:id/report.xlsx), written with openpyxl's write-only mode: rows
are streamed to the file as they are made, so the writer's memory does not grow with the class.

Sheet "Attendance" has the CSV's columns (live.history.report_csv), its session columns headed by their start
in the requested time zone and the rate as a percentage cell; sheet "Sessions" has each session's start, end
(in that zone) and counts. Every text cell is a string cell — never a formula — and is guarded as the CSV's
are, so a copy-paste back into a CSV stays harmless too.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from classes.models import Class
from live.history import EVER, Period, attendance_rate, csv_cell, report_grid, row_counts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADING_FORMAT = "%Y-%m-%d %H:%M"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.00%"


def _text(value: str) -> str:
    """A string cell, whatever it holds: characters XML cannot carry are dropped and a leading formula character
    is escaped as in the CSV. openpyxl writes a str as a string cell unless it starts with "=", which the escape
    rules out, or is one of Excel's error values ("#N/A", "#REF!"…), which is escaped the same way (a student
    may be called "#N/A"). (Plain values, not styled cells: writing 100,000 of them is several times faster.)"""
    text = csv_cell(ILLEGAL_CHARACTERS_RE.sub("", value))
    return "'" + text if text in ERROR_CODES else text


def _number(sheet: WriteOnlyWorksheet, value: float | int | None, number_format: str | None = None) -> Any:
    if value is None:
        return None
    cell = WriteOnlyCell(sheet, value=value)
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _moment(sheet: WriteOnlyWorksheet, value: datetime, zone: ZoneInfo) -> Cell:
    """A date-time cell in `zone` (Excel has no time zones: the wall-clock time there)."""
    cell = WriteOnlyCell(sheet, value=value.astimezone(zone).replace(tzinfo=None))
    cell.number_format = DATETIME_FORMAT
    return cell


def report_xlsx(klass: Class, zone: ZoneInfo, period: Period = EVER) -> bytes:
    """The workbook's bytes (report_grid's four queries)."""
    grid = report_grid(klass, period)
    book = Workbook(write_only=True)
    attendance = book.create_sheet("Attendance")
    headings = [start.astimezone(zone).strftime(HEADING_FORMAT) for start, _ in grid.sessions]
    attendance.append(
        [_text(heading) for heading in ["studentId", "name", "email", *headings, "present", "absent", "late",
                                         "excused", "rate"]]
    )
    for sid, name, email, row in grid.students:
        present, absent, late, excused = row_counts(row)
        attendance.append(
            [
                *(_text(value) for value in (sid, name, email)),
                *(status or None for status in row),  # a status, or no record: an empty cell
                present,
                absent,
                late,
                excused,
                _number(attendance, attendance_rate(present, absent, late), PERCENT_FORMAT),
            ]
        )
    sessions = book.create_sheet("Sessions")
    sessions.append(["start", "end", "present", "absent", "late", "excused", "total"])
    for index, (start, end) in enumerate(grid.sessions):
        column = [row[index] for _, _, _, row in grid.students]
        present, absent, late, excused = row_counts(column)
        sessions.append(
            [_moment(sessions, start, zone), _moment(sessions, end, zone), present, absent, late, excused,
             present + absent + late + excused]
        )
    # Written to a temporary file, not a buffer that openpyxl's zip writer would grow in memory piece by piece.
    with tempfile.TemporaryFile() as file:
        book.save(file)
        file.seek(0)
        return file.read()
