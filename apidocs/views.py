"""The API documents and the page that renders them: public, no auth, not wrapped in the envelope."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from csp.decorators import csp, csp_update
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from apidocs.asyncapi import build_asyncapi
from apidocs.events import socket_events
from apidocs.openapi import build_openapi
from common.api import method_not_allowed

SAFE_METHODS = ("GET", "HEAD")

# Swagger UI from the project's own static files, under the pages' base policy (scripts, styles and the
# document from this origin only; "Try it out" calls this origin's API), plus: its CSS draws icons as data: SVGs.
DOCS_POLICY_ADDS = {"img-src": ["data:"]}


def safe_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """GET and HEAD; any other method is the API's 405 (envelope and `Allow`), like every route."""

    @csrf_exempt  # a POST is a 405 like on every API path, not a CSRF failure
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in SAFE_METHODS:
            return method_not_allowed(SAFE_METHODS)
        response = view(request, *args, **kwargs)
        patch_cache_control(response, no_cache=True)  # a deploy's new routes show at once
        return response

    return wrapper


@functools.cache
def openapi_bytes() -> bytes:
    # The routes are fixed once the URLconf is loaded: build the document once per process.
    return orjson.dumps(build_openapi(), option=orjson.OPT_INDENT_2)


def _json(body: bytes) -> HttpResponse:
    return HttpResponse(body, content_type="application/json")


@safe_only
def openapi_json(request: HttpRequest) -> HttpResponse:
    """OpenAPI 3.1: every HTTP route."""
    return _json(openapi_bytes())


def asyncapi_document(request: HttpRequest) -> dict[str, Any]:
    return build_asyncapi(host=request.get_host(), secure=request.is_secure())


@safe_only
def asyncapi_json(request: HttpRequest) -> HttpResponse:
    """AsyncAPI 3.0: the /ws socket, its events both ways and its errors."""
    return _json(orjson.dumps(asyncapi_document(request), option=orjson.OPT_INDENT_2))


@safe_only
@csp(settings.PAGE_CSP)
@csp_update(DOCS_POLICY_ADDS)
def docs(request: HttpRequest) -> HttpResponse:
    """One page: the OpenAPI document in Swagger UI, and the socket's events from the AsyncAPI document."""
    document = asyncapi_document(request)
    context = {"asyncapi": document, "events": socket_events(document)}
    return render(request, "apidocs/docs.html", context)
