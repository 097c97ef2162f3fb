from django.contrib import admin
from django.urls import include, path, re_path

from attendance_site.api import not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("classes.urls")),
    path("", include("live.urls")),
    # Anything else is the contract's JSON 404, whatever DEBUG says.
    re_path(r"^.*$", not_found),
]
