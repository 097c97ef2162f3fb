"""ASGI entry point: HTTP through Django, WebSocket /ws through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")

from server.http_handler import http_application  # noqa: E402

# Django is set up there, before anything imports models. One thread hop per request where it can
# (server.http_handler), Django's own handler elsewhere.
django_asgi_app = http_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402
from server.http_threads import KeptThreads  # noqa: E402

# A plain ASGI application: the launcher (server.serve) extends Daphne itself, through server.gate. HTTP requests
# run on threads kept between requests, not one started per request (server.http_threads).
application = ProtocolTypeRouter(
    {
        "http": KeptThreads(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
