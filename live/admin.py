from django.contrib import admin

from live.models import Attendance


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin):
    list_display = ["started_at", "klass", "student", "status"]
    list_filter = ["status"]
    search_fields = ["klass__class_name", "student__name", "student__email"]
    list_select_related = ["klass", "student"]
    raw_id_fields = ["klass", "student"]
    date_hierarchy = "started_at"
