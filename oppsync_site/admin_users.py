"""Users and API tokens in the admin, safe for Administrators who are not superusers (P9).

Administrators manage users and their role group only: the superuser flag and individual
permissions are for superusers, a superuser's account is not theirs to change, and the groups
offered are the three roles. API token keys are never shown again after creation (a prefix only);
the new key is shown once, in the message after saving.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from .models import ApiToken
from .roles import ROLE_PERMISSIONS

SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")


class OppSyncUserAdmin(UserAdmin):
    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in SUPERUSER_ONLY_FIELDS]})
            for name, options in fieldsets
        ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser and "groups" in form.base_fields:
            form.base_fields["groups"].queryset = Group.objects.filter(name__in=ROLE_PERMISSIONS)  # type: ignore[attr-defined]  # a ModelMultipleChoiceField
        return form

    def _superuser_account(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and obj.is_superuser and not request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._superuser_account(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._superuser_account(request, obj) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm[User], change: bool) -> None:
        if not request.user.is_superuser:
            # Whatever the request carried: a field left out of the form cannot be posted in.
            previous = User.objects.filter(pk=obj.pk).first() if obj.pk else None
            obj.is_superuser = previous.is_superuser if previous else False
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not request.user.is_superuser:
            form.instance.user_permissions.clear()


class SafeTokenAdmin(TokenAdmin):
    """Tokens by user and key prefix; the key itself is shown once, when created."""

    list_display = ("key_prefix", "user", "created")
    fields = ("user",)
    search_fields = ("user__username",)

    @admin.display(description="Key")
    def key_prefix(self, token: Token) -> str:
        return f"{token.key[:6]}…"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("user",) if obj is None else ("user", "key_prefix", "created")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("user", "key_prefix", "created")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("user")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(
                request,
                f"The new API key for {obj.user}: {obj.key} — copy it now, it is not shown again.",
            )


def register(site: admin.AdminSite) -> None:
    for model in (User, TokenProxy):
        if site.is_registered(model):
            site.unregister(model)
    site.register(User, OppSyncUserAdmin)
    site.register(ApiToken, SafeTokenAdmin)
