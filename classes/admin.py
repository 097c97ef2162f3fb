from django.contrib import admin

from classes.models import Class, Enrollment


class EnrollmentInline(admin.TabularInline[Enrollment, Class]):
    model = Enrollment
    extra = 0
    raw_id_fields = ["student"]


@admin.register(Class)
class ClassAdmin(admin.ModelAdmin[Class]):
    list_display = ["class_name", "teacher", "id"]
    search_fields = ["class_name", "teacher__name", "teacher__email"]
    list_select_related = ["teacher"]
    raw_id_fields = ["teacher"]
    inlines = [EnrollmentInline]
