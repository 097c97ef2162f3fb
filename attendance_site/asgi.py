"""ASGI entry point: HTTP through Django, WebSocket /ws through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

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
