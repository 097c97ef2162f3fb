"""Settings for MongoDB, chosen when MONGODB_URI is set (docs/configuration.md; docs/mongodb.md).

The backend is MongoDB's own django-mongodb-backend. What it needs beyond DATABASES, per its documentation
("Configuring a project to use Django MongoDB Backend", "Configuring Django's contrib apps"):

- every automatic primary key is an `ObjectIdAutoField` (MongoDB has no auto-increment): DEFAULT_AUTO_FIELD,
  plus AppConfig subclasses for the contrib apps whose own AppConfig pins `default_auto_field` (admin, auth,
  contenttypes);
- those apps' migrations are regenerated for ObjectId keys, in `mongo_migrations/` (MIGRATION_MODULES).
  `sessions` keeps Django's migrations: its primary key is `session_key`, not an automatic one.

Our own models need none of this: their keys are `common.fields.ObjectIdField`, stored as native
ObjectIds under `_id` here and as 24-char strings on SQL, so one set of migrations serves every backend.

Nothing here opens a connection: the client connects lazily on first use, so `manage.py check` and
`makemigrations` work without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

ENGINE = "django_mongodb_backend"
OBJECT_ID_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"

# Connection defaults, so that no request, command or test waits pymongo's 30 s default for a server that is
# not there. 10 s still rides out a replica-set election (electionTimeoutMillis defaults to 10 s). The same
# option in MONGODB_URI wins (e.g. `?serverSelectionTimeoutMS=30000`).
DEFAULT_CLIENT_OPTIONS = {
    "serverSelectionTimeoutMS": 10_000,
    "connectTimeoutMS": 5_000,
}

# Contrib app → the AppConfig that gives its automatic keys ObjectIds (classes defined lazily, below).
APP_CONFIGS = {
    "django.contrib.admin": f"{__name__}.MongoAdminConfig",
    "django.contrib.auth": f"{__name__}.MongoAuthConfig",
    "django.contrib.contenttypes": f"{__name__}.MongoContentTypesConfig",
}

# App label → package of its MongoDB migrations (made with `makemigrations` under these settings).
MIGRATION_MODULES = {
    "admin": "mongo_migrations.admin",
    "auth": "mongo_migrations.auth",
    "contenttypes": "mongo_migrations.contenttypes",
}


@dataclass(frozen=True)
class MongoSettings:
    database: dict[str, Any]
    default_auto_field: str = OBJECT_ID_AUTO_FIELD
    migration_modules: dict[str, str] = field(default_factory=lambda: dict(MIGRATION_MODULES))

    def installed_apps(self, apps: list[str]) -> list[str]:
        """INSTALLED_APPS with the contrib apps swapped for their ObjectId AppConfigs, order kept."""
        return [APP_CONFIGS.get(app, app) for app in apps]


def mongodb_settings(uri: str) -> MongoSettings:
    """Settings for the MongoDB that `uri` names, e.g. `mongodb://127.0.0.1:27017/attendance`.

    The connection string goes to DATABASES["HOST"] whole (the backend's documented form since 5.2.1;
    `parse_uri()` is deprecated), and the database name is the URI's path.
    """
    name, options = _parse(uri)
    client_options = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k.lower() not in options}
    return MongoSettings(
        database={
            "ENGINE": ENGINE,
            "HOST": uri,
            "NAME": name,
            "OPTIONS": client_options,
        }
    )


def _parse(uri: str) -> tuple[str, set[str]]:
    """The database name and the (lower-cased) option names of a MongoDB connection string.

    Parsed without pymongo's parse_uri, which resolves DNS for mongodb+srv:// URIs: settings must load offline.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.netloc:
        raise ImproperlyConfigured(
            f"MONGODB_URI must be a MongoDB connection string (mongodb://host:port/database), got {uri!r}"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name or any(char in name for char in '/\\. "$'):
        raise ImproperlyConfigured(
            f"MONGODB_URI must name the database in its path, e.g. mongodb://127.0.0.1:27017/attendance; got {uri!r}"
        )
    options = {pair.partition("=")[0].lower() for pair in parts.query.replace(";", "&").split("&") if pair}
    return name, options


def _app_config(name: str, base_path: str) -> type:
    from django.utils.module_loading import import_string

    base = import_string(base_path)
    return type(name, (base,), {"__module__": __name__, "default_auto_field": OBJECT_ID_AUTO_FIELD})


_APP_CONFIG_BASES = {
    "MongoAdminConfig": "django.contrib.admin.apps.AdminConfig",
    "MongoAuthConfig": "django.contrib.auth.apps.AuthConfig",
    "MongoContentTypesConfig": "django.contrib.contenttypes.apps.ContentTypesConfig",
}


def __getattr__(name: str) -> type:
    """The AppConfig classes of APP_CONFIGS, built on first use.

    Built lazily because settings.py imports this module, and settings must not import applications (their
    AppConfig modules pull in much of Django); Django imports these only while populating the app registry.
    """
    if name in _APP_CONFIG_BASES:
        config = _app_config(name, _APP_CONFIG_BASES[name])
        globals()[name] = config
        return config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
