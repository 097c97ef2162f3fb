from classes import views
from common.api import route

urlpatterns = [
    route("class", views.create_class),
    route("classes", views.my_classes),
    route("class/<str:class_id>", views.class_detail, views.update_class),
    route("class/<str:class_id>/add-student", views.add_student),
    route("class/<str:class_id>/students", views.enrol_students),
    route("class/<str:class_id>/students/<str:student_id>", views.remove_student),
]
