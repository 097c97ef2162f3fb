from django.urls import path

from live.consumers import AttendanceConsumer

websocket_urlpatterns = [
    path("ws", AttendanceConsumer.as_asgi()),
]
