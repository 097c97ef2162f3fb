"""Settings, read entirely from the environment (names, defaults and meanings: docs/configuration.md)."""

from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets Django's generic classes be subscripted at run time (ModelAdmin[User], CharField[str, str]) as the
# type checker sees them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Public on purpose: it only serves local development, and production refuses it (below).
DEFAULT_SECRET_KEY = "dev-insecure-live-attendance-secret-change-me"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "Refusing to start with DEBUG off and the default SECRET_KEY: "
        "set SECRET_KEY (and JWT_SECRET) to long random values, or set DEBUG=1 for local development."
    )

JWT_SECRET = env.str("JWT_SECRET", default=SECRET_KEY)
JWT_TTL_SECONDS = env.int("JWT_TTL_SECONDS", default=86400)
BCRYPT_ROUNDS = env.int("BCRYPT_ROUNDS", default=12)
PORT = env.int("PORT", default=3000)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
if DEBUG and "*" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append("*")

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(auth|class|classes|students|attendance)(/.*)?$"
# The CSV report's file name, readable by a cross-origin client.
CORS_EXPOSE_HEADERS = ["Content-Disposition"]

INSTALLED_APPS = [
    "server",  # first: its `runserver` is Daphne's with the project's extensions (server.gate)
    "daphne",  # before staticfiles, so `runserver` serves WebSockets too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "channels",
    "csp",
    "accounts",
    "classes",
    "live",
    "apidocs",
    "drf_spectacular_sidecar",  # Swagger UI's dist files, as static files (no DRF needed)
    "console",
]

MIDDLEWARE = [
    # A Host Django refuses is the JSON 400, DEBUG or not (before anything reads the Host).
    "common.api.BadHostMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything else touches the request (compressed, hashed, cached: docs/production.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sends the policy a view declares (the console's: console/views.py; the API docs': apidocs/views.py).
    "csp.middleware.CSPMiddleware",
    "common.api.JsonErrorMiddleware",
]
# What the API's own operations (common.api.route: JSON in and out, a token, no cookie) skip of MIDDLEWARE
# (server/http_handler.api_middleware; docs/benchmark.md, "HTTP": a third of a small request's own time). None of these
# does anything for them: their paths are not static files, their views are CSRF-exempt and read no session,
# login or message, and their answers carry no page policy. Everything else — the Host check, CORS, the
# security headers, Content-Length, X-Frame-Options, the JSON 500 — they keep, in the same order; and a
# middleware added to MIDDLEWARE applies to them too unless it is named here.
PAGE_ONLY_MIDDLEWARE = {
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "csp.middleware.CSPMiddleware",
}

# The Content-Security-Policy base of the HTML pages (`/`, `/docs`): each page's view sends it with what that
# page adds on top (console/views.py, apidocs/views.py). Not CONTENT_SECURITY_POLICY, which django-csp would
# send on every response: the JSON API responses carry none (they are not documents). Nothing inline; scripts,
# styles, images and calls from this origin only (CSP Level 3's 'self' also matches ws:// and wss:// on the
# page's own host and port: sockets to the same host).
PAGE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

ROOT_URLCONF = "attendance_site.urls"
# API routes are CSRF-exempt (token auth, no cookies); this answers the admin's CSRF failures in JSON too.
CSRF_FAILURE_VIEW = "common.api.forbidden"
ASGI_APPLICATION = "attendance_site.asgi.application"
# Paths are exact (docs/api.md): no redirect from /auth/me/ to /auth/me.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# Socket events run their database work on a pool of this many threads (live/db.py), each keeping its own
# connection: one slow statement (a DONE waiting on a lock) holds one thread, and the others serve the other
# sockets meanwhile. A few suffice: socket events make short queries, and each thread holds a connection.
DB_SOCKET_THREADS = env.int("DB_SOCKET_THREADS", default=8)
if DB_SOCKET_THREADS < 1:
    raise ImproperlyConfigured(f"DB_SOCKET_THREADS must be 1 or more, not {DB_SOCKET_THREADS}")
# HTTP requests served on threads at once, per process (server/http_handler.py; light reads on SQLite take
# none): more wait their turn, in order. Threads past the cores only contend for the interpreter lock — a report
# under 32 connections cost 5.5 ms of CPU with four at once, 2.8 ms with two (docs/benchmark.md, "HTTP"). Two
# still let two password hashes (which release the lock) use two cores.
HTTP_THREADS = env.int("HTTP_THREADS", default=2)
if HTTP_THREADS < 1:
    raise ImproperlyConfigured(f"HTTP_THREADS must be 1 or more, not {HTTP_THREADS}")
MONGODB_URI = env.str("MONGODB_URI", default="")
if MONGODB_URI:
    from attendance_site.mongodb import mongodb_settings

    _mongo = mongodb_settings(MONGODB_URI)
    DATABASES = {"default": _mongo.database}
    DEFAULT_AUTO_FIELD = _mongo.default_auto_field
    INSTALLED_APPS = _mongo.installed_apps(INSTALLED_APPS)
    MIGRATION_MODULES = _mongo.migration_modules
else:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
    }
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["ENGINE"] = "attendance_site.sqlite3"  # Django's, with SQLite's real limits
        # WAL lets readers run beside the single writer; the busy timeout waits out short locks. IMMEDIATE: a
        # transaction takes the write lock when it begins, waiting for it up to the busy timeout; a deferred one
        # that reads first and writes later cannot wait (SQLite fails the upgrade at once, "database is locked",
        # when another write committed meanwhile), and DONE would fail beside any other write.
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            }
        )
        # A thread's connection stays open between requests (the event loop's, serving light reads, and each
        # kept request thread's: server/http_threads.py): opening and closing it per request was ~6 % of
        # GET /auth/me (docs/benchmark.md, "HTTP: the last of Django's per-request costs"). What a close would
        # end — statements left unread, a transaction left open — is ended at each request's start and end
        # (attendance_site/sqlite3), and Django still closes one left out of autocommit or broken.
        DATABASES["default"]["CONN_MAX_AGE"] = None
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI each request may run on a thread of its own, so persistent connections
        # (CONN_MAX_AGE) would pile up until the server refuses clients; Django's documented answer
        # is psycopg's connection pool, which makes the per-request "connect" a cheap checkout.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # With a pool, this makes psycopg check each connection before handing it out, so a connection
        # broken since its last use (a restarted or failed-over server) is replaced instead of failing a request.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            # On top of DB_POOL_MAX_SIZE: one connection kept by each socket database thread (DB_SOCKET_THREADS).
            "max_size": env.int("DB_POOL_MAX_SIZE", default=10) + DB_SOCKET_THREADS,
            "timeout": 10,
        }

# The WebSocket's database threads keep their connections between events (live/db.py); one unused for longer
# than this is checked (one round trip: is_usable() on SQL, a ping on MongoDB) before it is used again.
DB_IDLE_CHECK_SECONDS = env.float("DB_IDLE_CHECK_SECONDS", default=30.0)

# --- Channels ---------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# A live session without a change for this long is expired (every backend: live.selectors, live.commands).
SESSION_TTL_SECONDS = env.int("SESSION_TTL_SECONDS", default=12 * 3600)
# How often a process with open sockets re-checks their accounts, recovers claims left by a dead worker and
# expires idle sessions.
LIVE_UPKEEP_SECONDS = env.float("LIVE_UPKEEP_SECONDS", default=15.0)
# Without transactions (standalone MongoDB), how long a worker may take to persist a claimed session (DONE)
# before recovery takes it back (and fences off its late commit). With the upkeep's period (± 20 % jitter)
# this bounds recovery: 30 + 18 s, within a minute (docs/production.md).
LIVE_CLAIM_LEASE_SECONDS = env.float("LIVE_CLAIM_LEASE_SECONDS", default=30.0)
if REDIS_URL:
    from common.redis_client import redis_retry

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s socket timeout equals channels-redis' 5 s blocking receive, so a
                # quiet minute would end in TimeoutError; the receive always answers within 5 s, so 15 s
                # only fires on a dead connection. Keepalive finds half-open ones; the retry carries a
                # command over a restarted Redis or a dropped connection (a URL pool retries nothing).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        "retry": redis_retry(),
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
                "prefix": env.str("REDIS_CHANNEL_PREFIX", default="asgi"),
            },
        }
    }
    # Lets several deployments share one Redis database.
    REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="live")
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "live.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }

# --- Auth ----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = ["accounts.hashers.ConfigurableBCryptSHA256PasswordHasher"]
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

# --- Request limits (docs/api.md: bodies over 1 MiB → 413) ------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
WS_MAX_MESSAGE_BYTES = 64 * 1024


# --- Limits against abuse (docs/production.md; common/limits.py). 0 turns a limit off. -----------
def _limit(name: str, default: int) -> int:
    value: int = env.int(name, default=default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 (off) or more, not {value}")
    return value


def _rate(name: str, default: float) -> float:
    value: float = env.float(name, default=default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 (off) or more, not {value}")
    return value


# Failed logins per (email, client IP) and per client IP, in windows of 15 minutes.
LOGIN_FAILURES_PER_EMAIL = _limit("LOGIN_FAILURES_PER_EMAIL", 5)
LOGIN_FAILURES_PER_IP = _limit("LOGIN_FAILURES_PER_IP", 50)
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
# Each socket's token bucket: bursts of WS_RATE_BURST frames, refilled at WS_RATE_PER_SECOND.
WS_RATE_BURST = _limit("WS_RATE_BURST", 500)
WS_RATE_PER_SECOND = _rate("WS_RATE_PER_SECOND", 50)
WS_MAX_SOCKETS_PER_USER = _limit("WS_MAX_SOCKETS_PER_USER", 20)
# Sign-ups per client IP in windows of an hour (a classroom behind one address signs up at once).
SIGNUPS_PER_IP = _limit("SIGNUPS_PER_IP", 100)
# Open sockets per client IP, in each process.
WS_MAX_SOCKETS_PER_IP = _limit("WS_MAX_SOCKETS_PER_IP", 200)
# A connection must deliver its whole request (a WebSocket's upgrade request included) within this, and a
# socket's handshake complete within it too; 0 = off (Twisted's 60 s idle timeout is then the only bound).
REQUEST_DEADLINE_SECONDS = _limit("REQUEST_DEADLINE_SECONDS", 10)
# Connections the kernel queues for the server to accept (Twisted's default is 50; Node's 511). A class of
# hundreds connects within a second, and a connection the queue drops waits a second before its client tries
# again. The kernel caps it at net.core.somaxconn (4096 on recent Linux).
LISTEN_BACKLOG = env.int("LISTEN_BACKLOG", default=1024)
if LISTEN_BACKLOG < 1:
    raise ImproperlyConfigured(f"LISTEN_BACKLOG must be 1 or more, not {LISTEN_BACKLOG}")
# Behind a reverse proxy: the client is the last X-Forwarded-For hop (the one the proxy itself added).
PROXY_HEADERS = env.bool("PROXY_HEADERS", default=False)
# Daphne's access log: one line per request on standard output. Behind nginx, which logs every request itself
# (deploy/nginx.conf), it repeats what nginx writes, at about a tenth of a small request's time (docs/benchmark.md).
ACCESS_LOG = env.bool("ACCESS_LOG", default=True)
# The broadcast fast path and the other optimisations of Daphne/Autobahn/Twisted (server.gate); 0 = their
# plain, public paths (slower, never wrong), as on package versions the optimisations were not written for.
LIVE_FAST_PATH = env.bool("LIVE_FAST_PATH", default=True)

# Where at-risk notices go (live.alerts): a django-environ email URL — smtp://user:password@host:587,
# smtp+tls://..., smtp+ssl://..., consolemail:// (the default: printed to the log), dummymail:// (dropped).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("EMAIL_FROM", default="Live Attendance <attendance@localhost>")
# A mail server that does not answer gives up after this long (the notices are sent off the request path).
EMAIL_TIMEOUT = 10

# The failed-login counters live in a cache of their own: per process by default, shared by every
# worker through Redis when REDIS_URL is set. Large enough not to cull counters during a flood.
LIMITS_CACHE = "limits"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    LIMITS_CACHE: (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_KEY_PREFIX}:limits",
            # A Redis that does not answer must not hang logins (limits.py lets them through, logged).
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "live-attendance-limits",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    ),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (the admin's, the API docs' and the console's), served by the project itself (WhiteNoise) --
STATIC_URL = "static/"
# Where `collectstatic` gathers them; the over-the-wire tests use a scratch directory. `make run`
# (server.prepare) makes it a link to the current build: resolved once here, so that a running process keeps
# serving the build it started with (its manifest and its files alike) when a later start switches the link.
STATIC_LINK = Path(str(env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")))
STATIC_ROOT = STATIC_LINK.resolve()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names (cached for good), gzip copies, and ES-module imports rewritten to hashed names.
    "staticfiles": {"BACKEND": "attendance_site.static_storage.ConsoleStaticStorage"},
}
# DEBUG serves straight from the apps' static/ folders, re-read on every change (no collectstatic needed).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    # 4xx answers are the API working as specified; server errors are still logged.
    "loggers": {"django.request": {"level": "ERROR"}},
}
