from django.contrib import admin
from django.urls import include, path, re_path

from attendance_site.api import not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("classes.urls")),
    path("", include("live.urls")),
    # /openapi.json, /asyncapi.json and /docs: generated from the routes above and the socket's tables.
    path("", include("apidocs.urls")),
    # `/`: the web console (HTML; its files are under /static/, served by WhiteNoise before routing).
    path("", include("console.urls")),
    # Anything else is the contract's JSON 404, whatever DEBUG says.
    re_path(r"^.*$", not_found),
]

# What Django answers itself is JSON too (attendance_site.api).
handler400 = "attendance_site.api.bad_request"
handler403 = "attendance_site.api.forbidden"
handler404 = "attendance_site.api.not_found"
handler500 = "attendance_site.api.server_error"
