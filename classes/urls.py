from attendance_site.api import route
from classes import views

urlpatterns = [
    route("class", views.create_class),
    route("classes", views.my_classes),
    route("class/<str:class_id>", views.class_detail),
    route("class/<str:class_id>/add-student", views.add_student),
]
