from common.api import route
from live import views

urlpatterns = [
    route("attendance/start", views.start_attendance),
    route("attendance/active", views.active_attendance),
    route("attendance/check-in", views.check_in),
    route("class/<str:class_id>/check-in", views.checkin_state),
    route("class/<str:class_id>/my-attendance", views.my_attendance),
    route("class/<str:class_id>/sessions", views.class_sessions),
    route("class/<str:class_id>/sessions/<str:session_id>", views.class_session),
    route("class/<str:class_id>/sessions/<str:session_id>/records/<str:student_id>", views.correct_record),
    route("class/<str:class_id>/sessions/<str:session_id>/changes", views.session_changes),
    route("class/<str:class_id>/report", views.class_report),
    route("class/<str:class_id>/report.csv", views.class_report_csv),
    route("class/<str:class_id>/report.xlsx", views.class_report_xlsx),
    route("class/<str:class_id>/my-summary", views.my_summary),
    route("class/<str:class_id>/my-history", views.my_history),
]
