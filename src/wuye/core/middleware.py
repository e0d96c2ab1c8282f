"""Chinese first: the UI language is what the user chose, else Chinese, not the browser's."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ChineseFirstMiddleware:
    """Drop the browser's Accept-Language so LocaleMiddleware falls back to LANGUAGE_CODE.

    A language picked with the 中文/English switch (cookie or session) still wins.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
