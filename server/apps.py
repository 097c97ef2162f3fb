from django.apps import AppConfig


class ServerConfig(AppConfig):
    """The Daphne server layer as an app only for its `runserver` command (server/management/commands)."""

    name = "server"
    verbose_name = "Server"
