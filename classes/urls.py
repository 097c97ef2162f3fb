from django.urls import path

from classes import views

urlpatterns = [
    path("class", views.create_class),
    path("class/<str:class_id>", views.class_detail),
    path("class/<str:class_id>/add-student", views.add_student),
]
