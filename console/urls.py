from django.urls import path

from common.api import route
from console import views

urlpatterns = [
    path("", views.index),
    route("qr", views.qr_code),
]
