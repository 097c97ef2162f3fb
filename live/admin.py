from django.contrib import admin

from live.models import Attendance, AttendanceSession


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin[Attendance]):
    list_display = ["started_at", "klass", "student", "status"]
    list_filter = ["status"]
    search_fields = ["klass__class_name", "student__name", "student__email"]
    list_select_related = ["klass", "student"]
    raw_id_fields = ["klass", "student"]
    date_hierarchy = "started_at"


@admin.register(AttendanceSession)
class AttendanceSessionAdmin(admin.ModelAdmin[AttendanceSession]):
    list_display = ["started_at", "klass", "committed"]
    list_filter = ["committed"]
    list_select_related = ["klass"]
    raw_id_fields = ["klass"]
    date_hierarchy = "started_at"
