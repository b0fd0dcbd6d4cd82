"""The REST API's routes (`/api/v1/`), its OpenAPI schema and its docs (served without a CDN)."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from campaigns.api.views import CampaignViewSet, DeliveryViewSet
from opportunities.api.people import PersonViewSet
from opportunities.api.views import ActivityViewSet, ContactRoleViewSet, OpportunityViewSet, SyncStatusView
from smartlists.api.views import FilterCatalogView, MembersCsvView, SmartListViewSet

from .api.views import SettingsView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("persons", PersonViewSet, basename="person")
router.register("opportunities", OpportunityViewSet, basename="opportunity")
router.register("contact-roles", ContactRoleViewSet, basename="contact-role")
router.register("activities", ActivityViewSet, basename="activity")
router.register("smart-lists", SmartListViewSet, basename="smart-list")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register(r"campaigns/(?P<campaign_pk>\d+)/deliveries", DeliveryViewSet, basename="campaign-delivery")

urlpatterns = [
    path("v1/filters/", FilterCatalogView.as_view(), name="filters"),
    path("v1/smart-lists/<int:pk>/members.csv", MembersCsvView.as_view(), name="smart-list-members-csv"),
    path("v1/", include(router.urls)),
    path("v1/settings/", SettingsView.as_view(), name="settings"),
    path("v1/sync/status/", SyncStatusView.as_view(), name="sync-status"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
