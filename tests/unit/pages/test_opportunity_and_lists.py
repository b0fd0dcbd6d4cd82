"""The opportunity page, the people and opportunity lists, and bad or odd synced data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.pages.test_person_page import person_url, table_rows

pytestmark = pytest.mark.django_db


def opportunity_url(opportunity) -> str:
    return reverse("admin:opportunities_opportunity_change", args=[opportunity.pk])


def test_opportunity_page_shows_fields_by_label_roles_people_and_activity(
    client, viewer, person_with_opportunities
):
    data = person_with_opportunities
    ActivityFactory(person=data.person, opportunity=data.alpha, role="Decision Maker", is_primary=True)
    client.force_login(viewer)
    html = client.get(opportunity_url(data.alpha)).content.decode()
    assert "Alpha deal" in html
    assert 'id="opportunity-amount">$1,000.00<' in html
    assert "Sales region" in html and "Region__c" in html and "EMEA" in html  # custom field by label
    assert "<dt>Stage<small>StageName</small></dt>" not in html  # the stage shows in the header
    roles = table_rows(html, "opportunity-contact-roles")
    assert roles == ["Grace Hopper grace@example.com Decision Maker Yes"]
    activity = table_rows(html, "activity-table")
    assert len(activity) == 1 and "Grace Hopper" in activity[0] and "Added to Opportunity" in activity[0]


def test_an_opportunity_without_roles_says_it_belongs_to_nobody(client, viewer):
    lonely = OpportunityFactory(name="Nobody's deal")
    client.force_login(viewer)
    html = client.get(opportunity_url(lonely)).content.decode()
    assert "has no contact roles" in html


def test_html_in_salesforce_values_is_shown_escaped_and_long_names_wrap(client, viewer):
    script = "<script>alert('x')</script>"
    image = '<img src=x onerror="alert(1)">'
    person = PersonFactory(
        first_name=script, last_name=image, company=image, custom_fields={"Bio__c": script}
    )
    opportunity = OpportunityFactory(
        name=f"{script} {'Long' * 50}", stage_name=image, amount=None, expected_revenue=None
    )
    ContactRoleFactory(person=person, opportunity=opportunity, role=image)
    ActivityFactory(
        person=person,
        opportunity=opportunity,
        activity_type="opportunity_updated",
        field=image,
        previous_value=script,
        new_value=image,
    )
    client.force_login(viewer)
    pages = [
        person_url(person),
        person_url(person, tab="opportunities"),
        person_url(person, tab="activity"),
        opportunity_url(opportunity),
        reverse("admin:people_person_changelist"),
        reverse("admin:opportunities_opportunity_changelist"),
        reverse("admin:opportunities_activity_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
    html = client.get(person_url(person, tab="opportunities")).content.decode()
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=" in html
    # A missing amount is empty, not "$0.00"; the totals still add up to zero.
    row = table_rows(html, "opportunity-info")[0]
    assert "$" not in row


@pytest.mark.parametrize(
    ("query", "expected"),
    [("hopp", ["Grace Hopper"]), ("NAVY", ["Grace Hopper"]), ("grace@", ["Grace Hopper"]), ("zzz", [])],
)
def test_people_search_by_name_email_and_company(client, viewer, person_with_opportunities, query, expected):
    PersonFactory(first_name="Alan", last_name="Turing", email="alan@example.org", company="Bletchley")
    client.force_login(viewer)
    html = client.get(reverse("admin:people_person_changelist"), {"q": query}).content.decode()
    found = [name for name in ("Grace Hopper", "Alan Turing") if name in html]
    assert found == expected


def test_people_search_by_salesforce_id(client, viewer, person_with_opportunities):
    client.force_login(viewer)
    person = person_with_opportunities.person
    html = client.get(reverse("admin:people_person_changelist"), {"q": person.sf_contact_id}).content.decode()
    assert "Grace Hopper" in html


def test_opportunity_list_search_filters_and_money(client, viewer, person_with_opportunities):
    OpportunityFactory(
        name="Zeta deal",
        account_name="Acme Rockets",
        stage_name="Closed Won",
        is_closed=True,
        is_won=True,
        close_date=dt.date(2026, 1, 15),
        amount=Decimal("12500.00"),
        lead_source="Web",
    )
    client.force_login(viewer)
    url = reverse("admin:opportunities_opportunity_changelist")

    def names(**params) -> set[str]:
        html = client.get(url, params).content.decode()
        return {
            n for n in ("Alpha deal", "Beta deal", "Gamma deal", "Zeta deal", "Deleted deal") if n in html
        }

    assert "Deleted deal" not in names()  # deleted opportunities leave the lists
    assert names(q="acme rock") == {"Zeta deal"}  # account name
    assert names(q="beta") == {"Beta deal"}
    assert names(stage_name="Closed Won") == {"Gamma deal", "Zeta deal"}
    assert names(is_won__exact="1") == {"Zeta deal"}
    assert names(close_date__gte="2026-01-01", close_date__lte="2026-01-31") == {"Zeta deal"}
    assert names(lead_source="Web") == {"Zeta deal"}
    assert "$12,500.00" in client.get(url).content.decode()
    # The stage filter offers describe's picklist values, not a scan of the table.
    assert "?stage_name=Prospecting" in client.get(url).content.decode()
    # A malformed date is an error page of the admin, never a 500.
    assert client.get(url, {"close_date__gte": "not-a-date"}).status_code in (200, 302)


def test_money_follows_the_readers_locale(client, viewer, person_with_opportunities):
    client.force_login(viewer)
    html = client.get(
        person_url(person_with_opportunities.person, tab="opportunities"),
        HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9",
    ).content.decode()
    assert "6.000,00\xa0$" in html


def test_activities_list_filters_by_type_and_date_range(client, viewer, person_with_opportunities):
    data = person_with_opportunities
    ActivityFactory(person=data.person, opportunity=data.alpha, activity_type="added_to_opportunity")
    ActivityFactory(person=data.person, opportunity=data.beta, activity_type="removed_from_opportunity")
    client.force_login(viewer)
    url = reverse("admin:opportunities_activity_changelist")
    html = client.get(url, {"activity_type__exact": "removed_from_opportunity"}).content.decode()
    assert "Beta deal" in html and "Alpha deal" not in html
    assert (
        client.get(url, {"occurred_at__gte": "2000-01-01", "occurred_at__lte": "2000-01-02"}).status_code
        == 200
    )


@pytest.mark.parametrize("bound", ["occurred_at__lte", "occurred_at__gte"])
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_date_range_at_the_ends_of_the_calendar_is_the_changelists_error_page_not_a_500(
    client, viewer, bound, day
):
    client.force_login(viewer)
    response = client.get(reverse("admin:opportunities_activity_changelist"), {bound: day})
    # Django's changelist answers IncorrectLookupParameters by redirecting to ?e=1.
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
