from attendance_site.api import route
from live import views

urlpatterns = [
    route("attendance/start", views.start_attendance),
    route("class/<str:class_id>/my-attendance", views.my_attendance),
]
