from django.urls import path

from live import views

urlpatterns = [
    path("attendance/start", views.start_attendance),
    path("class/<str:class_id>/my-attendance", views.my_attendance),
]
