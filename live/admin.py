"""Persisted attendance in the Django admin: sessions with their counts and records, read-only.

History is written by DONE only: nothing here adds or changes a record. Deleting stays possible, because
deleting a class or a user in the admin takes their sessions and records with it (Django refuses a
cascade over a model the admin may not delete)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from live import history
from live.models import Attendance, AttendanceSession

M = TypeVar("M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # The model's `klass` (named so because `class` is a keyword) is shown as "class", in lists and pages.
    def get_list_display(self, request: HttpRequest) -> Any:
        return [_labelled(name) for name in super().get_list_display(request)]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [_labelled(name) for name in super().get_fields(request, obj)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*(_labelled(name) for name in super().get_readonly_fields(request, obj)), CLASS]

    @admin.display(description="class", ordering="klass__class_name")
    def class_(self, record: Any) -> str:
        return str(record.klass)


CLASS = "class_"  # ReadOnlyAdmin.class_: the column and field that shows `klass`


def _labelled(name: Any) -> Any:
    return CLASS if name == "klass" else name


@admin.register(Attendance)
class AttendanceAdmin(ReadOnlyAdmin[Attendance]):
    list_display = ["started_at", "klass", "student", "status", "remark", "by", "at", "source"]
    list_filter = ["status", "source"]
    search_fields = ["klass__class_name", "student__name", "student__email"]
    list_select_related = ["klass", "student"]
    date_hierarchy = "started_at"


class SessionChangeList(ChangeList):
    """The page's sessions get their counts from one grouped query (see history.session_counts)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        sessions = list(self.result_list)  # evaluated once: the page renders these very objects
        counts = history.session_counts((session.klass_id, session.started_at) for session in sessions)
        for session in sessions:
            setattr(session, COUNTS, counts.get((session.klass_id, session.started_at), history.NO_RECORDS))


SESSION_FIELDS = (
    "id", "klass", "teacher", "state", "started_at", "updated_at", "ended_at",
    "present", "absent", "late", "excused", "total", "records", "changes",
)
# Where a listed session keeps the counts its page read (set by SessionChangeList).
COUNTS = "_attendance_counts"


@admin.register(AttendanceSession)
class AttendanceSessionAdmin(ReadOnlyAdmin[AttendanceSession]):
    list_display = ["started_at", "ended_at", "klass", "state", "present", "absent", "late", "excused", "total"]
    list_filter = ["state"]
    search_fields = ["klass__class_name"]
    list_select_related = ["klass"]
    date_hierarchy = "started_at"
    fields = SESSION_FIELDS
    readonly_fields = SESSION_FIELDS

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SessionChangeList

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        # The page is titled by the session's class name and start, not by the class's raw id.
        session = self.get_object(request, object_id)
        if session is not None:
            title = f"{session.klass.class_name}, started {session.started_at:%Y-%m-%d %H:%M:%S}"
            extra_context = {**(extra_context or {}), "subtitle": title}
        return super().change_view(request, object_id, form_url, extra_context)

    def _counts(self, session: AttendanceSession) -> history.Counts:
        counts: history.Counts | None = getattr(session, COUNTS, None)
        if counts is None:  # the change page: one session
            key = (session.klass_id, session.started_at)
            counts = history.session_counts([key]).get(key, history.NO_RECORDS)
            setattr(session, COUNTS, counts)
        return counts

    @admin.display(description="present")
    def present(self, session: AttendanceSession) -> int:
        return self._counts(session)[0]

    @admin.display(description="absent")
    def absent(self, session: AttendanceSession) -> int:
        return self._counts(session)[1]

    @admin.display(description="late")
    def late(self, session: AttendanceSession) -> int:
        return self._counts(session)[2]

    @admin.display(description="excused")
    def excused(self, session: AttendanceSession) -> int:
        return self._counts(session)[3]

    @admin.display(description="total")
    def total(self, session: AttendanceSession) -> int:
        return sum(self._counts(session))

    @admin.display(description="records")
    def records(self, session: AttendanceSession) -> str:
        rows = history.session_records(session.klass_id, session.started_at)
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>"
            "<td><code>{}</code></td></tr>",
            (
                (r.name, r.email, r.status, r.remark or "", r.by or "", r.at or "", r.source or "", r.studentId)
                for r in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>name</th><th>email</th><th>status</th><th>remark</th><th>by</th><th>at</th>"
            "<th>source</th><th>student id</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="changes")
    def changes(self, session: AttendanceSession) -> str:
        """The session's change log, in the order made (read-only, as everything here)."""
        rows = history.session_changes(session.klass, session.id)
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            ((c.at, c.studentId, c.status or "cleared", c.remark or "", c.by, c.source) for c in rows),
        )
        return format_html(
            "<table><thead><tr><th>at</th><th>student id</th><th>status</th><th>remark</th><th>by</th>"
            "<th>source</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )
