"""Synced data is read-only in the admin for everybody; only Administrators change settings."""

from __future__ import annotations

import pytest
from django.urls import reverse

from oppsync_site.models import SubscriptionSettings
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory

SYNCED = [
    ("people", "person", PersonFactory),
    ("opportunities", "opportunity", OpportunityFactory),
    ("opportunities", "contactrole", ContactRoleFactory),
    ("opportunities", "activity", ActivityFactory),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model", "factory"), SYNCED)
def test_a_superuser_cannot_add_change_or_delete_synced_records(client, superuser, app, model, factory):
    record = factory()
    client.force_login(superuser)
    model_class = type(record)
    before = model_class.objects.count()

    assert client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:{app}_{model}_add")).status_code == 403
    assert client.post(reverse(f"admin:{app}_{model}_add"), {}).status_code == 403

    change_url = reverse(f"admin:{app}_{model}_change", args=[record.pk])
    page = client.get(change_url)
    assert page.status_code == 200  # viewing is allowed ...
    assert b'name="_save"' not in page.content  # ... but there is nothing to save
    assert client.post(change_url, {}).status_code == 403

    assert client.get(reverse(f"admin:{app}_{model}_delete", args=[record.pk])).status_code == 403
    assert (
        client.post(reverse(f"admin:{app}_{model}_delete", args=[record.pk]), {"post": "yes"}).status_code
        == 403
    )
    bulk_delete = client.post(
        reverse(f"admin:{app}_{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert bulk_delete.status_code in (200, 302)
    assert model_class.objects.count() == before


@pytest.mark.django_db
def test_a_marketer_cannot_change_the_settings(client, marketer):
    client.force_login(marketer)
    settings = SubscriptionSettings.load()
    url = reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk])

    assert client.get(url).status_code == 403  # only Administrators see the settings page
    assert client.post(url, {"default_currency": "EUR", "time_zone": "UTC"}).status_code == 403
    assert SubscriptionSettings.load().default_currency == "USD"


@pytest.mark.django_db
def test_a_viewer_cannot_change_the_settings(client, viewer):
    client.force_login(viewer)
    settings = SubscriptionSettings.load()
    url = reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"default_currency": "EUR", "time_zone": "UTC"}).status_code == 403
    assert SubscriptionSettings.load().default_currency == "USD"


@pytest.mark.django_db
def test_an_administrator_changes_the_default_currency(client, administrator):
    client.force_login(administrator)
    settings = SubscriptionSettings.load()
    url = reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk])

    response = client.post(url, {"default_currency": "EUR", "time_zone": "UTC"})

    assert response.status_code == 302
    assert SubscriptionSettings.load().default_currency == "EUR"
    assert SubscriptionSettings.load().currency_symbol == "€"


@pytest.mark.django_db
def test_the_settings_list_goes_straight_to_the_single_settings_page(client, administrator):
    client.force_login(administrator)
    response = client.get(reverse("admin:oppsync_site_subscriptionsettings_changelist"))
    assert response.status_code == 302
    assert response["Location"].endswith(f"/{SubscriptionSettings.load().pk}/change/")
    assert client.get(reverse("admin:oppsync_site_subscriptionsettings_add")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("bad_code", ["XYZ", "usd "])
def test_the_currency_field_rejects_what_is_not_an_iso_4217_code(client, administrator, bad_code):
    client.force_login(administrator)
    settings = SubscriptionSettings.load()
    url = reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk])

    response = client.post(url, {"default_currency": bad_code, "time_zone": "UTC"})

    assert response.status_code == 200  # the form again, with the error
    assert "is not an ISO 4217 currency code" in response.content.decode()
    assert SubscriptionSettings.load().default_currency == "USD"


@pytest.mark.django_db
def test_the_currency_choices_come_from_iso_4217(client, administrator):
    client.force_login(administrator)
    settings = SubscriptionSettings.load()
    page = client.get(reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk]))
    html = page.content.decode()
    assert '<option value="JPY">JPY — Japanese Yen (¥)</option>' in html
    assert 'value="XYZ"' not in html


@pytest.mark.django_db
def test_marketers_and_viewers_may_browse_synced_data(client, marketer, viewer):
    OpportunityFactory()
    for user in (marketer, viewer):
        client.force_login(user)
        assert client.get(reverse("admin:opportunities_opportunity_changelist")).status_code == 200
        assert client.get(reverse("admin:people_person_changelist")).status_code == 200
        assert client.get(reverse("admin:opportunities_synccycle_changelist")).status_code == 403
