from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/signup", views.signup),
    path("auth/login", views.login),
    path("auth/me", views.me),
    path("students", views.students),
]
