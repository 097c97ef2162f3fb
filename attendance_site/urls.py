from django.contrib import admin
from django.urls import include, path, re_path

from accounts import admin as accounts_admin
from common.api import not_found
from console import views as console_views

urlpatterns = [
    # The admin's login answers 429 when the failed-login limits refuse it (accounts/admin.py).
    path("admin/login/", accounts_admin.login),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("classes.urls")),
    path("", include("live.urls")),
    # /openapi.json, /asyncapi.json and /docs: generated from the routes above and the socket's tables.
    path("", include("apidocs.urls")),
    # The console's icon where browsers look for one (console/views.py).
    path("favicon.ico", console_views.favicon),
    # `/`: the web console (HTML; its files are under /static/, served by WhiteNoise before routing).
    path("", include("console.urls")),
    # Anything else is the contract's JSON 404, whatever DEBUG says.
    re_path(r"^.*$", not_found),
]

# What Django answers itself is JSON too (common.api).
handler400 = "common.api.bad_request"
handler403 = "common.api.forbidden"
handler404 = "common.api.not_found"
handler500 = "common.api.server_error"
