"""ASGI entry point: HTTP through Django, WebSocket /ws through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402
from server import daphne_ext, daphne_limits  # noqa: E402

# Daphne loads this module before it starts listening, whichever way it is launched
# (`make run`, the daphne command, `manage.py runserver`).
daphne_ext.install()
daphne_limits.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
