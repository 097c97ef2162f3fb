"""Daphne's own cost per request: an ASGI application that answers every request at once with one fixed JSON
body the size of GET /auth/me's, touching nothing else (no Django, no database, no token).

`bench/http_bench.py --servers floor` serves it with Daphne as the project is served, and measures it on
GET /auth/me beside the project and the reference: what the HTTP server alone costs, before the application.
"""

from __future__ import annotations

from typing import Any

BODY = (
    b'{"success":true,"data":{"_id":"6b16353096ed78c290384222","name":"Student 00000",'
    b'"email":"student0-000000@bench.example.com","role":"student"}}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
