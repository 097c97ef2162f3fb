from django.urls import path

from live.consumers import AttendanceConsumer

# The one WebSocket path, exactly as written (no trailing slash, case as is). An upgrade anywhere else is
# served as plain HTTP: the JSON 404 (server.http_guard).
WEBSOCKET_PATH = "/ws"

websocket_urlpatterns = [
    path(WEBSOCKET_PATH.removeprefix("/"), AttendanceConsumer.as_asgi()),
]


def is_websocket_path(path: str) -> bool:
    """Whether `path` (percent-decoded, without the query string) is where a socket opens."""
    return path == WEBSOCKET_PATH
