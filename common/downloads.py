"""File downloads over HTTP: a response with an RFC 6266 Content-Disposition that is safe for any name."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from django.http import HttpResponse

# What a file name may hold in the plain `filename` parameter: no quotes, backslashes, slashes, semicolons
# or control characters, which would break the header or the client's file system.
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 ._()-]+")
MAX_STEM = 100


def _printable(name: str) -> str:
    """NFC; whitespace runs (tabs and newlines too) → one space; control, format and unassigned characters
    dropped."""
    name = re.sub(r"\s+", " ", unicodedata.normalize("NFC", name))
    return "".join(c for c in name if not unicodedata.category(c).startswith("C"))


def _tidy(name: str, fallback: str) -> str:
    """Trimmed of spaces and dots, at most MAX_STEM; `fallback` if no letter or digit is left."""
    name = name.strip(" .")[:MAX_STEM].strip(" .")
    return name if any(c.isalnum() for c in name) else fallback


def ascii_filename(stem: str, fallback: str = "download") -> str:
    """`stem` in plain ASCII: accents dropped (Émile → Emile), anything else unsafe → "_"."""
    ascii_only = unicodedata.normalize("NFKD", _printable(stem)).encode("ascii", "ignore").decode("ascii")
    return _tidy(_UNSAFE_ASCII.sub("_", ascii_only), fallback)


def utf8_filename(stem: str, fallback: str = "download") -> str:
    """`stem` for `filename*`: any printable Unicode; path separators → "_"."""
    return _tidy(re.sub(r"[/\\]", "_", _printable(stem)), fallback)


def content_disposition(stem: str, suffix: str, fallback: str = "download") -> str:
    """`attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded UTF-8>` (RFC 6266, RFC 5987):
    clients that know `filename*` use the exact name, older ones the ASCII one."""
    plain = ascii_filename(stem, fallback) + suffix
    exact = quote(utf8_filename(stem, fallback) + suffix, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}"


def attachment(
    content: bytes, content_type: str, *, stem: str, suffix: str, fallback: str = "download"
) -> HttpResponse:
    """A download: `content` as a file named `<stem><suffix>`, never cached (it is somebody's records)."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition(stem, suffix, fallback)
    response["Cache-Control"] = "private, no-store"
    return response
