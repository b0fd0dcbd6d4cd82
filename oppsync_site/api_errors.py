"""404 and 500 pages: JSON under /api/, Django's pages elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error


def json_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"Not found: {request.path}"}, status=404)
    return page_not_found(request, exception)


def json_server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal error; the server log has the details."}, status=500)
    return server_error(request)


class ApiNotFoundJsonMiddleware:
    """A 404 under /api/ is JSON in every settings module: with DEBUG on, Django answers an
    unknown URL with its HTML debug page before handler404 is ever asked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not str(response.get("Content-Type", "")).startswith("application/json")
        ):
            return JsonResponse({"detail": f"Not found: {request.path}"}, status=404)
        return response
