"""Trigger campaigns in the admin: the editor (the smart-list builder in campaign mode: triggers,
smart list, webhook, qualification), and each campaign's deliveries with their attempts, a
status filter, "Send a test delivery" and "Resend". Saving goes through the API, so the admin
and API clients check campaigns the same way."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils.html import format_html

from oppsync_site.admin_pages import custom_page_context, object_page_urls
from smartlists.admin_builder import BuilderAdmin

from .models import Campaign, Delivery, DeliveryStatus
from .selectors import campaigns_with_delivery_counts, delivery_counts
from .services import qualification_json
from .tasks import delivery_queue
from .triggers import TRIGGER_LABELS
from .webhooks import resend, sample_delivery_create

DELIVERIES_PAGE_SIZE = 50


def trigger_summary(campaign: Campaign) -> str:
    parts = []
    for trigger in campaign.triggers:
        label = TRIGGER_LABELS.get(trigger.get("trigger"), "?")
        if trigger.get("field"):
            label += f" ({trigger['field']})"
        count = len(trigger.get("constraints") or [])
        parts.append(label + (f" + {count} constraint{'s' if count != 1 else ''}" if count else ""))
    return " · ".join(parts)


@admin.register(Campaign)
class CampaignAdmin(BuilderAdmin[Campaign]):
    list_display = [
        "name",
        "status_badge",
        "triggers_shown",
        "qualification_shown",
        "deliveries_shown",
        "last_delivery",
    ]
    list_display_links = ["name"]
    search_fields = ["name", "description"]
    list_filter = ["is_active"]
    builder_template = "admin/campaigns/campaign/editor.html"
    builder_add_title = "New trigger campaign"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return campaigns_with_delivery_counts(super().get_queryset(request))

    @admin.display(description="Status", ordering="is_active")
    def status_badge(self, campaign: Campaign) -> str:
        if campaign.is_active:
            return format_html('<span class="os-badge os-good">{}</span>', "Active")
        if campaign.is_paused:
            return format_html(
                '<span class="os-badge os-bad" title="{}">{}</span><div class="os-paused-reason">{}</div>',
                campaign.paused_reason,
                "Paused",
                campaign.paused_reason,
            )
        return format_html('<span class="os-badge">{}</span>', "Inactive")

    @admin.display(description="Triggers")
    def triggers_shown(self, campaign: Campaign) -> str:
        return trigger_summary(campaign)

    @admin.display(description="Qualification")
    def qualification_shown(self, campaign: Campaign) -> str:
        rule = qualification_json(campaign)
        return (
            f"Once every {rule['once_every_days']} days"
            if isinstance(rule, dict)
            else campaign.get_qualification_display()
        )

    @admin.display(description="Deliveries")
    def deliveries_shown(self, campaign: Campaign) -> str:
        url = reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])
        counts = delivery_counts(campaign)
        failed = (
            format_html(
                ' · <a class="os-bad-text" href="{}?status=failed">{} failed</a>',
                url,
                f"{counts['failed']:,}",
            )
            if counts["failed"]
            else ""
        )
        pending = format_html(" · {} pending", f"{counts['pending']:,}") if counts["pending"] else ""
        return format_html('<a href="{}">{} sent</a>{}{}', url, f"{counts['succeeded']:,}", failed, pending)

    @admin.display(description="Last delivery", ordering="last_delivery_at")
    def last_delivery(self, campaign: Campaign) -> Any:
        return campaign.last_delivery_at or "—"  # type: ignore[attr-defined]

    def get_urls(self) -> list[URLPattern]:
        return [
            *object_page_urls(
                self,
                ("deliveries/", self.deliveries_view, "deliveries"),
                ("test-delivery/", self.test_delivery_view, "test_delivery"),
                ("deliveries/<int:delivery_id>/resend/", self.resend_view, "resend"),
            ),
            *super().get_urls(),
        ]

    # --- the editor (the builder in campaign mode) -------------------------------------------------
    def builder_page(
        self, request: HttpRequest, campaign: Campaign | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {
            "name": campaign.name if campaign else "",
            "description": campaign.description if campaign else "",
            "is_active": campaign.is_active if campaign else True,
            "triggers": campaign.triggers if campaign else [],
            "smart_list": campaign.smart_list if campaign else None,
            "qualification": qualification_json(campaign) if campaign else "every_time",
            "webhook": {
                "url": campaign.webhook_url if campaign else "",
                "headers": campaign.webhook_headers if campaign else {},
                "secret_hint": campaign.secret_hint if campaign else "",
            },
        }
        qualification = data["qualification"]
        context = {
            "campaign": campaign,
            "campaign_data": data,
            "qualification_rule": "once_every_days" if isinstance(qualification, dict) else qualification,
            "qualification_days": qualification["once_every_days"] if isinstance(qualification, dict) else 7,
            "headers_text": "\n".join(f"{k}: {v}" for k, v in data["webhook"]["headers"].items()),
        }
        page = {
            "mode": "campaign",
            "id": campaign.pk if campaign else None,
            "name": data["name"],
            "description": data["description"],
            "definition": {"logic": "all", "filters": []},
            "campaign": data,
            "triggerLabels": TRIGGER_LABELS,
        }
        return context, page

    # --- deliveries -------------------------------------------------------------------------------
    def deliveries_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=object_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        wanted = request.GET.get("status", "")
        deliveries = Delivery.objects.filter(campaign=campaign).select_related(
            "person", "activity__opportunity"
        )
        if wanted in DeliveryStatus.values:
            deliveries = deliveries.filter(status=wanted)
        page = Paginator(
            deliveries.prefetch_related("attempts").order_by("-created_at", "-id"), DELIVERIES_PAGE_SIZE
        ).get_page(request.GET.get("page"))
        for delivery in page.object_list:
            delivery.attempt_list = list(
                delivery.attempts.all()
            )  # prefetched, as a list the template can take the last of
        counts = dict(
            Delivery.objects.filter(campaign=campaign)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        context = {
            **custom_page_context(self, request, f"{campaign.name}: deliveries"),
            "campaign": campaign,
            "page": page,
            "wanted": wanted,
            "statuses": [(s.value, s.label, counts.get(s.value, 0)) for s in DeliveryStatus],
            "total": sum(counts.values()),
            "triggers": trigger_summary(campaign),
            "can_change": self.has_change_permission(request, campaign),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/deliveries.html", context)

    def _post_by_editor(self, request: HttpRequest, campaign: Campaign) -> None:
        if request.method != "POST" or not self.has_change_permission(request, campaign):
            raise PermissionDenied

    def test_delivery_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=object_id)
        self._post_by_editor(request, campaign)
        delivery = sample_delivery_create(campaign)
        delivery_queue(delivery.pk)
        messages.success(
            request,
            f"A test delivery is on its way to {campaign.webhook_url}; it appears below within seconds.",
        )
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk]))

    def resend_view(self, request: HttpRequest, object_id: int, delivery_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=object_id)
        self._post_by_editor(request, campaign)
        delivery = get_object_or_404(Delivery, pk=delivery_id, campaign=campaign)
        if delivery.status == DeliveryStatus.PENDING:
            messages.warning(request, "That delivery is still being sent.")
        else:
            delivery_queue(resend(delivery).pk)
            messages.success(
                request, f"Sending {delivery.idempotency_key} again, with the same idempotency key."
            )
        return HttpResponseRedirect(
            reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])
            + (
                f"?status={request.GET['status']}"
                if request.GET.get("status") in DeliveryStatus.values
                else ""
            )
        )
