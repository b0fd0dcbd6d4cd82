"""The person page: Info, Opportunity Info and Activity Log tabs."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from opportunities.models import ActivityType
from opportunities.selectors import person_opportunity_totals
from tests.factories import ActivityFactory

pytestmark = pytest.mark.django_db


def person_url(person, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("admin:people_person_change", args=[person.pk]) + (f"?{query}" if query else "")


def table_rows(html: str, table_id: str) -> list[str]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = [re.sub(r"<[^>]+>", "", row.replace("</td>", " ")) for row in body.split("</tr>") if "<td" in row]
    return [re.sub(r"\s+", " ", row).strip() for row in rows]


def test_info_tab_shows_standard_and_custom_fields_ids_and_state(client, viewer, person_with_opportunities):
    person = person_with_opportunities.person
    client.force_login(viewer)
    html = client.get(person_url(person)).content.decode()
    assert 'aria-selected="true">Info<' in html
    for text in ("Grace", "Hopper", "grace@example.com", "Navy", person.sf_contact_id, person.sf_lead_id):
        assert text in html
    assert "Favourite colour" in html and "Favourite_Colour__c" in html and "Teal" in html
    assert "Contact (converted lead)" in html
    assert "Deleted in Salesforce" not in html.split('id="person-info"')[0]


def test_opportunity_info_lists_every_live_role_and_nothing_else(client, viewer, person_with_opportunities):
    data = person_with_opportunities
    client.force_login(viewer)
    html = client.get(person_url(data.person, tab="opportunities")).content.decode()
    rows = table_rows(html, "opportunity-info")
    names = [row.split(" ")[0] + " " + row.split(" ")[1] for row in rows]
    assert sorted(names) == ["Alpha deal", "Beta deal", "Beta deal", "Gamma deal"]
    for hidden in ("Orphan deal", "Removed deal", "Deleted deal"):
        assert hidden not in html
    alpha = next(row for row in rows if row.startswith("Alpha"))
    assert "Decision Maker Yes Prospecting $1,000.00 $100.00 10%" in alpha
    beta_rows = [row for row in rows if row.startswith("Beta")]
    assert any("Economic Buyer No" in row for row in beta_rows)
    assert any("Evaluator No" in row for row in beta_rows)
    gamma = next(row for row in rows if row.startswith("Gamma"))
    assert "$" not in gamma.split("Closed Won", 1)[1].split("%")[0]  # no amount: empty, not $0


def test_totals_are_the_selectors_numbers_with_each_opportunity_once(
    client, viewer, person_with_opportunities
):
    person = person_with_opportunities.person
    totals = person_opportunity_totals(person)
    assert totals.total_amount == Decimal("6000.00")
    assert totals.number_of_opportunities == 3
    assert totals.total_expected_revenue == Decimal("2600.00")
    client.force_login(viewer)
    html = client.get(person_url(person, tab="opportunities")).content.decode()
    assert re.search(r'id="total-opty-amount">\$6,000\.00<', html)
    assert re.search(r'id="number-of-optys">3<', html)
    assert re.search(r'id="total-opty-expected-revenue">\$2,600\.00<', html)


def test_opportunity_info_sorts_by_amount_both_ways(client, viewer, person_with_opportunities):
    client.force_login(viewer)
    person = person_with_opportunities.person
    ascending = table_rows(
        client.get(person_url(person, tab="opportunities", sort="amount")).content.decode(),
        "opportunity-info",
    )
    descending = table_rows(
        client.get(person_url(person, tab="opportunities", sort="-amount")).content.decode(),
        "opportunity-info",
    )
    assert [r.split(" ")[0] for r in ascending] == ["Alpha", "Beta", "Beta", "Gamma"]  # no amount last
    assert [r.split(" ")[0] for r in descending] == ["Beta", "Beta", "Alpha", "Gamma"]
    # An unknown sort key falls back to the default instead of failing.
    assert client.get(person_url(person, tab="opportunities", sort="password")).status_code == 200


def test_a_person_without_opportunities_sees_why(client, viewer, person_with_opportunities):
    from tests.factories import PersonFactory

    nobody = PersonFactory()
    client.force_login(viewer)
    html = client.get(person_url(nobody, tab="opportunities")).content.decode()
    assert 'id="opportunity-info-empty"' in html
    assert "contact roles" in html
    assert re.search(r'id="number-of-optys">0<', html)


def test_activity_log_newest_first_with_labels_roles_and_filters(client, viewer, person_with_opportunities):
    data = person_with_opportunities
    now = timezone.now()
    ActivityFactory(
        person=data.person,
        opportunity=data.alpha,
        activity_type=ActivityType.ADDED_TO_OPPORTUNITY,
        occurred_at=now - dt.timedelta(days=3),
        role="Decision Maker",
        is_primary=True,
    )
    ActivityFactory(
        person=data.person,
        opportunity=data.alpha,
        activity_type=ActivityType.OPPORTUNITY_UPDATED,
        occurred_at=now - dt.timedelta(days=1),
        field="StageName",
        previous_value="Prospecting",
        new_value="Closed Won",
    )
    ActivityFactory(
        person=data.person,
        opportunity=data.beta,
        activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY,
        occurred_at=now - dt.timedelta(days=2),
        role="Evaluator",
        is_primary=False,
    )
    client.force_login(viewer)
    rows = table_rows(client.get(person_url(data.person, tab="activity")).content.decode(), "activity-table")
    assert [r.split(" ")[3] for r in rows] == ["Opportunity", "Removed", "Added"]
    assert "Stage: Prospecting → Closed Won" in rows[0]
    assert "Role: Evaluator · Primary: No" in rows[1]
    assert "Role: Decision Maker · Primary: Yes" in rows[2]

    only_added = table_rows(
        client.get(person_url(data.person, tab="activity", type="added_to_opportunity")).content.decode(),
        "activity-table",
    )
    assert len(only_added) == 1 and "Added to Opportunity" in only_added[0]
    day = (timezone.localtime(now) - dt.timedelta(days=2)).date().isoformat()
    one_day = table_rows(
        client.get(person_url(data.person, tab="activity", **{"from": day, "to": day})).content.decode(),
        "activity-table",
    )
    assert len(one_day) == 1 and "Removed from Opportunity" in one_day[0]


def test_activity_log_bad_filters_are_explained_not_fatal(client, viewer, person_with_opportunities):
    client.force_login(viewer)
    response = client.get(
        person_url(person_with_opportunities.person, tab="activity", type="nonsense", to="2026-13-45")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unknown activity type" in html and "is not a date" in html


def test_activity_log_pages_fifty_at_a_time(client, viewer, person_with_opportunities):
    from tests.unit.pages.conftest import add_activities

    add_activities(person_with_opportunities.person, person_with_opportunities.alpha, 120)
    client.force_login(viewer)
    first = client.get(person_url(person_with_opportunities.person, tab="activity")).content.decode()
    last = client.get(person_url(person_with_opportunities.person, tab="activity", page=3)).content.decode()
    assert len(table_rows(first, "activity-table")) == 50
    assert len(table_rows(last, "activity-table")) == 20
    assert "Page 3 of 3 (120 activities)" in last
    assert "Stage 119" in first and "Stage 0" in last  # newest first


def test_the_tab_is_in_the_url_and_nobody_can_post(client, superuser, person_with_opportunities):
    client.force_login(superuser)
    url = person_url(person_with_opportunities.person, tab="activity")
    assert 'aria-selected="true">Activity Log<' in client.get(url).content.decode()
    assert client.post(url, {"first_name": "Changed"}).status_code == 403
    person_with_opportunities.person.refresh_from_db()
    assert person_with_opportunities.person.first_name == "Grace"


def test_the_tab_totals_and_the_smart_list_aggregates_are_the_same_numbers(person_with_opportunities):
    from django.db.models import OuterRef

    from opportunities.selectors import OPPORTUNITY_TOTALS, person_opportunity_total
    from people.models import Person

    person = person_with_opportunities.person
    annotated = Person.objects.annotate(
        **{name: person_opportunity_total(name, OuterRef("pk")) for name in OPPORTUNITY_TOTALS}
    ).get(pk=person.pk)
    totals = person_opportunity_totals(person)
    assert annotated.total_opty_amount == totals.total_amount == Decimal("6000.00")
    assert annotated.number_of_optys == totals.number_of_opportunities == 3
    assert annotated.total_opty_expected_revenue == totals.total_expected_revenue == Decimal("2600.00")
