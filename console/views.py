"""The web console: one HTML page at `/`; everything else it needs is static files and the public API."""

from csp.constants import NONE, SELF
from csp.decorators import csp
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from common import messages
from common.api import fail

# DESIGN.md "Web console": `default-src 'self'`, sockets to the same host. In CSP Level 3 `'self'` also
# matches ws:// and wss:// on the page's own host and port, so the console can open only its own /ws.
# No inline script or style anywhere, so none is allowed.
CONSOLE_POLICY = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF],
    "connect-src": [SELF],
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}


@csrf_exempt  # it takes no form and no cookie: other methods get the API's JSON 405, not a CSRF 403
@csp(CONSOLE_POLICY)
def index(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return fail(405, messages.METHOD_NOT_ALLOWED)  # the API's envelope, like every other wrong method
    response = render(request, "console/index.html")
    # Revalidate the page on every load so that a deploy's new (hashed) assets are picked up at once.
    patch_cache_control(response, no_cache=True)
    return response
