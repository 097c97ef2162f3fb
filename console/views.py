"""The web console: one HTML page at `/`; everything else it needs is static files and the public API, and one
route of its own, `/qr`: QR codes of check-in links for its projector view."""

from pathlib import Path

from csp.decorators import csp
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from accounts import auth
from accounts.models import User
from common.api import endpoint, method_not_allowed
from console.qr import qr_path
from console.schemas import QrCode, QrQuery

SAFE_METHODS = ("GET", "HEAD")
# The console's icon, also answered at /favicon.ico (browsers and the admin ask for it there).
ICON = Path(__file__).resolve().parent / "static" / "console" / "icon.svg"
ICON_MAX_AGE = 86_400


@csrf_exempt  # it takes no form and no cookie: other methods get the API's JSON 405, not a CSRF 403
@csp(settings.PAGE_CSP)  # the pages' base as it is: the console opens only its own /ws (docs/console.md)
def index(request: HttpRequest) -> HttpResponse:
    if request.method not in SAFE_METHODS:
        return method_not_allowed(SAFE_METHODS)  # the API's envelope and `Allow`, like every other wrong method
    response = render(request, "console/index.html")
    # Revalidate the page on every load so that a deploy's new (hashed) assets are picked up at once.
    patch_cache_control(response, no_cache=True)
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    if request.method not in SAFE_METHODS:
        return method_not_allowed(SAFE_METHODS)
    response = HttpResponse(ICON.read_bytes(), content_type="image/svg+xml")
    patch_cache_control(response, public=True, max_age=ICON_MAX_AGE)
    return response


@endpoint("GET", auth=auth.teacher, query=QrQuery, response=QrCode)
def qr_code(request: HttpRequest, user: User, query: QrQuery) -> QrCode:
    """A QR code of `text`, drawn by the server for the console's check-in projector view.

    The page draws `path` in an `<svg>` of its own (no image from another host, no encoder in the browser). For
    teachers, who project check-in links; the text is not stored."""
    size, path = qr_path(query.text)
    return QrCode(text=query.text, size=size, path=path)
