"""The builder page in the admin: one page of plain JavaScript (`static/oppsync/builder.js`) that
the smart-list builder and the trigger-campaign editor (campaigns/admin.py) share.

Both are a model admin's add and change views: the same permission checks, the same page shell
(`templates/admin/smartlists/builder_base.html`, which each page's template extends) and the same
configuration for builder.js; each admin gives only what its page adds.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from oppsync_site.admin_pages import custom_page_context

from .registry import OPERATORS, TIME_FRAMES

_Model = TypeVar("_Model", bound=models.Model)


def builder_config(*, can_save: bool, changelist_url: str, **page: Any) -> dict[str, Any]:
    """What builder.js needs on every page that uses it (smart lists, trigger campaigns)."""
    return {
        "canSave": can_save,
        "operators": {key: {"label": o.label, "value": o.value} for key, o in OPERATORS.items()},
        "timeFrames": TIME_FRAMES,
        "changelistUrl": changelist_url,
        "personUrl": reverse("admin:people_person_change", args=[0]),
        "membersUrl": "",
        **page,
    }


class BuilderAdmin(admin.ModelAdmin[_Model]):
    """A model admin whose add and change pages are the builder.

    A subclass names its template and the add page's title, and says in `builder_page` what its
    page adds to the context and to builder.js's configuration.
    """

    builder_template: str
    builder_add_title: str

    def builder_page(self, request: HttpRequest, obj: _Model | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The template's own context, and what builder.js reads beyond `builder_config`'s.
        Every builder answers it (ModelAdmin's metaclass rules out `abc.abstractmethod` here)."""
        raise NotImplementedError(f"{type(self).__name__} must say what its builder page adds")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._builder_view(request, None)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return self._builder_view(request, get_object_or_404(self.model, pk=object_id))

    def _builder_view(self, request: HttpRequest, obj: _Model | None) -> HttpResponse:
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        # Without the right to save, the page still shows the definition and its preview.
        can_save = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        context, page = self.builder_page(request, obj)
        opts = self.model._meta
        return TemplateResponse(
            request,
            self.builder_template,
            {
                **custom_page_context(self, request, str(obj) if obj else self.builder_add_title),
                **context,
                "builder_config": builder_config(
                    can_save=can_save,
                    changelist_url=reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                    **page,
                ),
            },
        )
