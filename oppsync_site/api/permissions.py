"""Permissions by role (contract §2b). Its own module: DRF imports it while it loads its views."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Model
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView


class RolePermission(BasePermission):
    """Permissions of contract §2b, by the user's Django permissions (groups): reading needs the
    model's `view` permission; each view names what writing needs in `write_permission`."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        read_permission = getattr(view, "read_permission", None)
        if read_permission is None:
            model: type[Model] = view.queryset.model  # type: ignore[attr-defined]  # every viewset has one
            read_permission = f"{model._meta.app_label}.view_{model._meta.model_name}"
        if not user.has_perm(read_permission):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        write_permission = getattr(view, "write_permission", None)
        # Without a write permission the view is read-only: let DRF answer 405 for the method.
        return write_permission is None or user.has_perm(write_permission)
