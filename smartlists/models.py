"""Smart lists (product.md §3): saved, named sets of filters over people."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SmartList(models.Model):
    """A saved smart list: a name and a definition in the format of contract §4
    (`{"logic": "all" | "any" | "1 and (2 or 3)", "filters": [...]}`).

    The definition is data, checked against the filter registry and the synced fields whenever it
    is saved or evaluated; its members are computed on demand, never stored, so they always
    reflect the latest sync.
    """

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    definition = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def referenced_list_ids(self) -> set[int]:
        """The lists this one names through Member of Smart List."""
        return referenced_list_ids(self.definition)


def referenced_list_ids(definition: object) -> set[int]:
    ids: set[int] = set()
    filters = definition.get("filters") if isinstance(definition, dict) else None
    for item in filters if isinstance(filters, list) else []:
        if (
            isinstance(item, dict)
            and item.get("filter") == "member_of_smart_list"
            and isinstance(item.get("value"), list)
        ):
            ids |= {i for i in item["value"] if isinstance(i, int) and not isinstance(i, bool)}
    return ids
