"""Reading persisted attendance back: session history, per-student reports and their CSV export.

Only persisted sessions count: `AttendanceSession.objects.persisted()` and `Attendance.objects.counted_in(class_id)`
(live.models) say which, and nothing else here restates it. The database does the counting (grouped,
conditional COUNTs), so the number of queries of every function here is the same for 1 student or 1,000
and for 1 session or 100. Works on SQLite, PostgreSQL and MongoDB alike: plain filters, `values()` +
`annotate(Count(..., filter=...))`, one `__in` subquery, and forward joins (MongoDB `$lookup`) only to read
the students' names.

Access checks come first, from classes.services (404 class → 403 ownership / enrolment).
"""

from __future__ import annotations

import csv
import functools
import io
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, ExpressionWrapper, F, Max, Q, QuerySet, TextField
from django.db.models.functions import Cast

from accounts.models import User
from classes.models import Class
from common import messages
from common.errors import NotFound
from common.fields import is_object_id
from common.prepared import PreparedQuery
from common.schemas import iso_z
from live.models import Attendance, AttendanceChange, AttendanceSession, MarkSource, Status, persisted_session_ids
from live.schemas import (
    ChangeEntry,
    ClassReport,
    HistoryEntry,
    MySummary,
    SessionDetail,
    SessionRecord,
    SessionSummary,
)

# The counts of each status, by the database: (present, absent, late, excused) everywhere below.
# Each counts the status itself (never null), not the key: the index holds the status, not the key (live/models.py
# attendance_latest), so a report's counts are read from the index alone — ~40 % of them on SQLite.
COUNTS = {status.value: Count("status", filter=Q(status=status)) for status in Status}
Counts = tuple[int, int, int, int]
NO_RECORDS: Counts = (0, 0, 0, 0)
# A record's startedAt as text, cast by the database: only used as a key to match records with their
# session's column (the same column, cast the same way, in the same request). Converting 100,000
# timestamps to aware datetimes in Python was most of the CSV's time (psycopg's loader under Django's
# timezone handling on PostgreSQL, Django's own parser on SQLite); text is read at C speed.
RAW_STARTED_AT = Cast("started_at", TextField())
# A record's studentId as the driver returns it (a str on SQL, an ObjectId on MongoDB): with no column
# left to convert, Django hands the rows over as they come.
RAW_STUDENT_ID = ExpressionWrapper(F("student_id"), output_field=TextField())


@dataclass(frozen=True)
class Period:
    """The sessions started in [start, end) (`?from=&to=`); None: unbounded on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def of(self, sessions: QuerySet[AttendanceSession]) -> QuerySet[AttendanceSession]:
        if self.start is not None:
            sessions = sessions.filter(started_at__gte=_up_to_the_millisecond(self.start))
        if self.end is not None:
            sessions = sessions.filter(started_at__lt=_up_to_the_millisecond(self.end))
        return sessions


EVER = Period()


def persisted_sessions(class_id: str, period: Period = EVER) -> QuerySet[AttendanceSession]:
    return period.of(AttendanceSession.objects.persisted().filter(klass_id=class_id))


def session_starts(class_id: str, period: Period = EVER) -> list[tuple[str, datetime]]:
    """(id, startedAt) of the class's persisted sessions in `period` (one query; compiled once when the
    period is unbounded, as the console's report and every my-summary ask it)."""
    if period == EVER:
        return _session_starts(class_id)
    return list(persisted_sessions(class_id, period).values_list("id", "started_at"))


_session_starts = PreparedQuery(
    AttendanceSession, lambda class_id: persisted_sessions(class_id).order_by().values_list("id", "started_at")
)


# Names whose folded form is kept (folded_name), and the longest kept: a school's students, a few MB at most even
# for names that unfold the most (NFKD makes up to 18 characters of one).
FOLDED_NAMES_KEPT = 8_192
FOLDED_NAME_KEPT_LENGTH = 64


def name_order(name: str, email: str, student_id: str) -> tuple[str, str, str, str]:
    """Students "by name", the same on every database: case and accents ignored first (Émile with Emma,
    alice with Alice), then the exact name, email and id so that the order is total."""
    folded = kept_folded_name(name) if len(name) <= FOLDED_NAME_KEPT_LENGTH else folded_name(name)
    return folded, name, email, student_id


def folded_name(name: str) -> str:
    """`name` without case or accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)).casefold()


# Every report and roster folds its class's names again, a character at a time: 100–250 µs of a report of 30
# students, 5–10 % of class_report's own time.
kept_folded_name = functools.lru_cache(maxsize=FOLDED_NAMES_KEPT)(folded_name)


def attendance_rate(present: int, absent: int, late: int = 0) -> float | None:
    """(present + late) / (present + late + absent), 4 decimal places; `excused` is left out; None when the
    denominator is 0. The one rule of the report, the CSV and the console (docs/api.md)."""
    attended = present + late
    return round(attended / (attended + absent), 4) if attended + absent else None


# --- sessions -------------------------------------------------------------------------------------------


def sessions_page(
    klass: Class, limit: int, before: datetime | None = None, period: Period = EVER
) -> list[SessionSummary]:
    """Persisted sessions of a class in `period`, newest first: `limit` of them, started strictly before `before`.

    Two queries: the page of sessions, then their counts grouped by startedAt."""
    sessions = persisted_sessions(klass.id, period).order_by("-started_at")
    if before is not None:
        sessions = sessions.filter(started_at__lt=_up_to_the_millisecond(before))
    page = list(sessions.values_list("id", "started_at", "ended_at")[:limit])
    counts = session_counts((klass.id, started_at) for _, started_at, _ in page)
    summaries = []
    for session_id, started_at, ended_at in page:
        present, absent, late, excused = counts.get((klass.id, started_at), NO_RECORDS)
        summaries.append(
            SessionSummary(
                id=session_id,
                startedAt=started_at,
                endedAt=ended_at or started_at,  # committed by a worker older than endedAt (a rolling upgrade)
                present=present,
                absent=absent,
                late=late,
                excused=excused,
                total=present + absent + late + excused,
            )
        )
    return summaries


def session_counts(sessions: Iterable[tuple[str, datetime]]) -> dict[tuple[str, datetime], Counts]:
    """(present, absent, late, excused) of each (classId, startedAt), counted by the database in one grouped query (none
    for no sessions)."""
    sessions = list(sessions)
    if not sessions:
        return {}
    counted = (
        Attendance.objects.filter(
            klass_id__in={class_id for class_id, _ in sessions},
            started_at__in={started_at for _, started_at in sessions},
        )
        .order_by()
        .values("klass_id", "started_at")
        .annotate(**COUNTS)
        .values_list("klass_id", "started_at", *COUNTS)
    )
    return {(class_id, started_at): (p, a, late, e) for class_id, started_at, p, a, late, e in counted}


def session_records(class_id: str, started_at: datetime) -> list[SessionRecord]:
    """The records of one session with their students' names and emails, by name (one query)."""
    records = _records_of(class_id, started_at)
    return sorted(records, key=lambda r: name_order(r.name, r.email, r.studentId))


def _records_of(class_id: str, started_at: datetime, student_id: str | None = None) -> list[SessionRecord]:
    records = Attendance.objects.filter(klass_id=class_id, started_at=started_at)
    if student_id is not None:
        records = records.filter(student_id=student_id)
    rows = (
        records.order_by()
        # The joined columns under flat names of their own. (On MongoDB that projects them as expressions,
        # `{"student_name": "$accounts_user.name"}`; `values_list("student__name")`, or an alias equal to the
        # column's name, projects the nested inclusion `{"accounts_user": {"name": 1}}`, which SecantusDB
        # 0.7, the CI's MongoDB emulator, answers with 1s.)
        .annotate(student_name=F("student__name"), student_email=F("student__email"))
        .values_list("student_id", "student_name", "student_email", "status", "remark", "at", "by", "source")
    )
    return [
        SessionRecord(
            studentId=sid,
            name=name,
            email=email,
            status=Status(status),
            remark=remark,
            at=at,
            by=by,
            source=None if source is None else MarkSource(source),
        )
        for sid, name, email, status, remark, at, by, source in rows
    ]


def _up_to_the_millisecond(moment: datetime) -> datetime:
    """startedAt values are whole milliseconds, and MongoDB keeps no finer (pymongo truncates): a finer
    `before` is rounded up, so that "strictly before" selects the same sessions on every database."""
    extra = moment.microsecond % 1000
    if not extra or moment > datetime.max.replace(tzinfo=moment.tzinfo) - timedelta(milliseconds=1):
        return moment
    return moment + timedelta(microseconds=1000 - extra)


def persisted_session(klass: Class, session_id: str) -> AttendanceSession:
    """A persisted session of the class; NotFound "Session not found" for an unknown or malformed id, or a
    session of another class (or one not persisted)."""
    session = persisted_sessions(klass.id).filter(pk=session_id).first() if is_object_id(session_id) else None
    if session is None:
        raise NotFound(messages.SESSION_NOT_FOUND)
    return session


def session_detail(klass: Class, session_id: str) -> SessionDetail:
    """One persisted session of the class with its records by student name (persisted_session's NotFound).
    Two queries."""
    session = persisted_session(klass, session_id)
    records = session_records(klass.id, session.started_at)
    counts = Counter(record.status for record in records)
    return SessionDetail(
        id=session.id,
        classId=klass.id,
        startedAt=session.started_at,
        endedAt=session.ended_at or session.started_at,
        present=counts[Status.PRESENT],
        absent=counts[Status.ABSENT],
        late=counts[Status.LATE],
        excused=counts[Status.EXCUSED],
        total=len(records),
        records=records,
    )


def record(klass: Class, session: AttendanceSession, student_id: str) -> SessionRecord:
    """One student's record of a session with their name and email; NotFound "Student not found"."""
    found = _records_of(klass.id, session.started_at, student_id) if is_object_id(student_id) else []
    if not found:
        raise NotFound(messages.STUDENT_NOT_FOUND)
    return found[0]


def session_changes(klass: Class, session_id: str) -> list[ChangeEntry]:
    """Every change of a session of the class in the order made, live ones included (a live session's log
    is readable too: any session of the class, whatever its state). NotFound "Session not found"."""
    found = is_object_id(session_id) and AttendanceSession.objects.filter(pk=session_id, klass_id=klass.id).exists()
    if not found:
        raise NotFound(messages.SESSION_NOT_FOUND)
    rows = (
        AttendanceChange.objects.filter(session_id=session_id)
        .order_by("at", "id")
        .values_list("student_id", "status", "remark", "at", "by", "source")
    )
    return [
        ChangeEntry(
            studentId=sid,
            status=None if status is None else Status(status),
            remark=remark,
            at=at,
            by=by,
            source=MarkSource(source),
        )
        for sid, status, remark, at, by, source in rows
    ]


# --- reports --------------------------------------------------------------------------------------------


ATTENDED = (Status.PRESENT, Status.LATE)


@dataclass(frozen=True)
class Standing:
    """A student's counts over some sessions, their rate, their run of absences, and whether they are at risk."""

    present: int = 0
    absent: int = 0
    late: int = 0
    excused: int = 0
    consecutive_absences: int = 0
    min_rate: float = 0.0
    max_consecutive_absences: int = 0

    @property
    def rate(self) -> float | None:
        return attendance_rate(self.present, self.absent, self.late)

    def fields(self) -> dict[str, Any]:
        """The standing as the report's students and my-summary show it."""
        return {
            "present": self.present,
            "absent": self.absent,
            "late": self.late,
            "excused": self.excused,
            "rate": self.rate,
            "consecutiveAbsences": self.consecutive_absences,
            "atRisk": self.at_risk,
        }

    @property
    def at_risk(self) -> bool:
        """Below the class's minimum rate (as the rate is shown: 4 places), or absent too many times in a row.
        A student without a counted record (rate null, no run) is not at risk."""
        rate = self.rate
        low = rate is not None and rate < self.min_rate
        return low or self.consecutive_absences >= self.max_consecutive_absences


def standings(
    klass: Class, sessions: list[tuple[str, datetime]], student_id: str | None = None
) -> dict[str, Standing]:
    """Each student's Standing over the class's `sessions` (id, startedAt) (only `student_id`'s if given).

    Two queries whatever the size: the counts grouped by student with each student's last attended session
    (present or late), by the database; then the students' absences, by session, of which those after their
    last attended session make their current run. An excused session, or one without a record of the student
    (not enrolled then), neither counts in the run nor breaks it (docs/choices.md). Both are compiled once
    (common/prepared.py) for up to MAX_LIST sessions."""
    ids = [session_id for session_id, _ in sessions]
    if student_id is None:
        counted, absences = _counts(klass.id, ids), _absences(klass.id, ids)
    else:
        counted, absences = _counts_of(klass.id, ids, student_id), _absences_of(klass.id, ids, student_id)
    found = {sid: (p, a, late, e, last) for sid, p, a, late, e, last in counted}
    # A record's startedAt is its session's (live.commands writes it so): the absence's session says when.
    started = dict(sessions)
    runs: Counter[str] = Counter()
    for sid, session_id in absences:
        last = found[sid][4] if sid in found else None
        if last is None or started[session_id] > last:
            runs[sid] += 1
    return {
        sid: Standing(
            present=p,
            absent=a,
            late=late,
            excused=e,
            consecutive_absences=runs[sid],
            min_rate=klass.min_rate,
            max_consecutive_absences=klass.max_consecutive_absences,
        )
        for sid, (p, a, late, e, _) in found.items()
    }


def _counted(class_id: str, session_ids: list[str]) -> QuerySet[Attendance]:
    return Attendance.objects.counted_among(class_id, session_ids).order_by()


def _grouped_counts(records: QuerySet[Attendance]) -> QuerySet[Attendance, tuple[Any, ...]]:
    return (
        records.values("student_id")
        .annotate(**COUNTS, last_attended=Max("started_at", filter=Q(status__in=ATTENDED)))
        .values_list("student_id", *COUNTS, "last_attended")
    )


def _absences_by_session(records: QuerySet[Attendance]) -> QuerySet[Attendance, tuple[str, str]]:
    return records.filter(status=Status.ABSENT).values_list("student_id", "session_id")


# Every report and my-summary asks them: compiled once (common/prepared.py).
_counts = PreparedQuery(Attendance, lambda class_id, ids: _grouped_counts(_counted(class_id, ids)))
_counts_of = PreparedQuery(
    Attendance, lambda class_id, ids, student_id: _grouped_counts(_counted(class_id, ids).filter(student_id=student_id))
)
_absences = PreparedQuery(Attendance, lambda class_id, ids: _absences_by_session(_counted(class_id, ids)))
_absences_of = PreparedQuery(
    Attendance,
    lambda class_id, ids, student_id: _absences_by_session(_counted(class_id, ids).filter(student_id=student_id)),
)


def no_standing(klass: Class) -> Standing:
    """A student without records: all zeros, never at risk."""
    return Standing(min_rate=klass.min_rate, max_consecutive_absences=klass.max_consecutive_absences)


def class_report(klass: Class, period: Period = EVER) -> ClassReport:
    """Every enrolled student and every student with a record (enrolled then, since removed), by name, with
    their counts over the persisted sessions in `period`, their run of absences and whether they are at risk.

    Four queries whatever the size (five if students with records have left the class): the persisted
    sessions' starts; the counts of exactly those sessions' records, grouped by student in the database;
    their absences; the students' names. Counting over the sessions read first keeps the counts and `sessions`
    in step even while another session is being persisted."""
    sessions = session_starts(klass.id, period)
    found = standings(klass, sessions)
    nothing = no_standing(klass)
    students = [
        {"id": sid, "name": name, "email": email, **found.get(sid, nothing).fields()}
        for sid, name, email in students_by_name(klass, with_records=found)
    ]
    # Validated whole from plain data: one call into pydantic's core rather than one model per student.
    return ClassReport.model_validate(
        {"classId": klass.id, "className": klass.class_name, "sessions": len(sessions), "students": students}
    )


def my_summary(klass: Class, student: User) -> MySummary:
    """The student's own Standing over every persisted session of the class (three queries)."""
    standing = standings(klass, session_starts(klass.id), student.id).get(student.id, no_standing(klass))
    return MySummary(**standing.fields())


def newly_at_risk(klass: Class, session_id: str) -> dict[str, Standing]:
    """The students at risk after the persisted session `session_id` who were not before it (only students with
    a record in it can be), with their standing after it. Read after DONE commits; six queries whatever the size."""
    sessions = session_starts(klass.id)
    started_at = next((start for pk, start in sessions if pk == session_id), None)
    if started_at is None:
        return {}
    after = standings(klass, sessions)
    before = standings(klass, [(pk, start) for pk, start in sessions if pk != session_id])
    in_session = set(
        Attendance.objects.filter(klass_id=klass.id, started_at=started_at).values_list("student_id", flat=True)
    )
    nothing = no_standing(klass)
    return {
        sid: standing
        for sid, standing in after.items()
        if sid in in_session and standing.at_risk and not before.get(sid, nothing).at_risk
    }


def students_by_name(klass: Class, with_records: Iterable[str]) -> list[tuple[str, str, str]]:
    """(id, name, email) of the class's enrolled students and of the students in `with_records`, by name.

    One query for the enrolled, one more only for students with records who have since left the class.
    (Names are read here rather than joined into the grouped count, which made that count twice as slow.)"""
    people = {sid: (name, email) for sid, name, email in _enrolled(klass)}
    left = [sid for sid in with_records if sid not in people]
    if left:
        former = User.objects.filter(pk__in=left).values_list("id", "name", "email")
        people.update((sid, (name, email)) for sid, name, email in former)
    students = [(sid, name, email) for sid, (name, email) in people.items()]
    return sorted(students, key=lambda student: name_order(student[1], student[2], student[0]))


def _enrolled(klass: Class) -> list[tuple[str, str, str]]:
    return _enrolled_of(klass.id)


_enrolled_of = PreparedQuery(
    User,
    lambda class_id: User.objects.filter(enrollments__klass_id=class_id).order_by().values_list("id", "name", "email"),
)


# Spreadsheets run a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character is escaped with a quote."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


@dataclass(frozen=True)
class Grid:
    """The report as a table: the sessions (oldest first) and, by name, each student's cell per session (a status,
    or "" without a record: not enrolled then)."""

    sessions: list[tuple[datetime, datetime]]  # (startedAt, endedAt)
    students: list[tuple[str, str, str, list[str]]]  # (id, name, email, cells)


# One string object per status: the driver gives each row a new one (~50 bytes, 200,000 of them in a grid of
# 1,000 students × 200 sessions), the grid keeps a pointer to the shared one.
SHARED_STATUS: dict[str, str] = {status.value: status.value for status in Status}


def report_grid(klass: Class, period: Period = EVER) -> Grid:
    """The JSON report's students with one cell per persisted session in `period`.

    Four queries whatever the size: the sessions, every record of exactly those sessions as (student,
    session, status), the enrolled students, and the names of students with records who have left since
    (skipped when there are none). The export reads every record anyway, so it counts them as it places
    them: the columns and the counts agree even while another session is being persisted."""
    sessions = persisted_sessions(klass.id, period).order_by("started_at").annotate(key=RAW_STARTED_AT)
    starts = list(sessions.values_list("started_at", "ended_at", "key"))
    column = {key: index for index, (_, _, key) in enumerate(starts)}
    cells: dict[str, list[str]] = {}
    records = Attendance.objects.filter(klass_id=klass.id, started_at__in=[started_at for started_at, _, _ in starts])
    rows = records.order_by().annotate(sid=RAW_STUDENT_ID, key=RAW_STARTED_AT).values_list("sid", "key", "status")
    # Streamed (no result cache): only the grid of statuses is held, not every record as a row object; at
    # 1,000 students × 200 sessions that is the difference between ~50 MiB and a few (docs/benchmark.md).
    for sid, key, status in rows.iterator(chunk_size=5000):
        row = cells.get(sid)
        if row is None:
            row = cells[sid] = [""] * len(starts)
        row[column[key]] = SHARED_STATUS.get(status, status)
    cells = {str(sid): row for sid, row in cells.items()}
    empty = [""] * len(starts)
    return Grid(
        sessions=[(started_at, ended_at or started_at) for started_at, ended_at, _ in starts],
        students=[
            (sid, name, email, cells.get(sid, empty))
            for sid, name, email in students_by_name(klass, with_records=cells)
        ],
    )


def row_counts(row: list[str]) -> Counts:
    present, absent, late, excused = (row.count(status) for status in Status)
    return present, absent, late, excused


def report_csv(klass: Class, period: Period = EVER) -> str:
    """The report as CSV (report_grid: four queries): one column per persisted session (oldest first) holding a
    status / empty, and the JSON report's counts."""
    grid = report_grid(klass, period)
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: CRLF line ends; fields with commas, quotes or newlines quoted
    session_columns = [iso_z(started_at) for started_at, _ in grid.sessions]
    writer.writerow(["studentId", "name", "email", *session_columns, "present", "absent", "late", "excused", "rate"])
    for sid, name, email, row in grid.students:
        present, absent, late, excused = row_counts(row)
        rate = attendance_rate(present, absent, late)
        writer.writerow(
            [
                *map(csv_cell, (sid, name, email)),
                *row,  # a status or empty: nothing to guard
                *map(str, (present, absent, late, excused)),
                "" if rate is None else repr(rate),  # as the JSON writes it: 0.6667, 1.0
            ]
        )
    return out.getvalue()


# --- a student's own ------------------------------------------------------------------------------------


def my_history(klass: Class, student: User) -> list[HistoryEntry]:
    """The student's status in each persisted session of the class that has a record of them, newest first."""
    rows = _history_of(klass.id, persisted_session_ids(klass.id), student.id)
    return [
        HistoryEntry(startedAt=started_at, status=Status(status), remark=remark) for started_at, status, remark in rows
    ]


# Every student opening a class asks it: compiled once (common/prepared.py).
_history_of = PreparedQuery(
    Attendance,
    lambda class_id, session_ids, student_id: Attendance.objects.counted_among(class_id, session_ids)
    .filter(student_id=student_id)
    .order_by("-started_at")
    .values_list("started_at", "status", "remark"),
)
