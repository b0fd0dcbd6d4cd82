"""Reads of campaigns the admin and the API share."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from .models import Campaign, DeliveryStatus


def campaigns_with_delivery_counts(campaigns: QuerySet[Campaign] | None = None) -> QuerySet[Campaign]:
    """Each campaign with its real (not test) deliveries counted by status (attributes named
    after the statuses) and `last_delivery_at`: one query for a whole page of campaigns."""
    real = Q(deliveries__is_test=False)
    counts = {
        s.value: Count("deliveries", filter=real & Q(deliveries__status=s.value)) for s in DeliveryStatus
    }
    queryset = campaigns if campaigns is not None else Campaign.objects.all()
    return queryset.annotate(**counts, last_delivery_at=Max("deliveries__created_at", filter=real))


def delivery_counts(campaign: Campaign) -> dict[str, int]:
    """The counts `campaigns_with_delivery_counts` annotated, by status."""
    return {s.value: int(getattr(campaign, s.value, 0)) for s in DeliveryStatus}
