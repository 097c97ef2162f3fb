from accounts import views
from common.api import route

urlpatterns = [
    route("auth/signup", views.signup),
    route("auth/login", views.login),
    route("auth/me", views.me),
    route("students", views.students),
]
