"""A marketer and an administrator walk through the pages in a real browser (Debian's Chromium
through Playwright) while `make run`'s processes run the demo org, whose sales team keeps
changing deals. Every page is saved to docs/screenshots/ (the README shows them).

The walk cannot depend on the database engine, so it runs once, in the PostgreSQL pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis
import requests
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.db.models import Count, Q

from opportunities.models import ContactRole, Opportunity
from oppsync_site.roles import ADMINISTRATORS, MARKETERS, roles_apply
from people.models import Person
from salesforce_emulator.control import EmulatorControl
from tests.e2e.conftest import CHROMIUM
from tests.processes import REPO, free_port, process_env, redis_test_url, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = REPO / "docs" / "screenshots"
XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=1</script>"


def _web_is_up(base: str) -> bool:
    try:
        return requests.get(f"{base}/admin/login/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture
def demo_stack(tmp_path):
    """`manage.py run_stack` without credentials: web, worker, beat and the emulator's demo org."""
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (.ci/services.sh)")
    roles_apply(django_apps)
    for name, group in (("marketer", MARKETERS), ("administrator", ADMINISTRATORS)):
        user = User.objects.create_user(username=name, password=f"{name}-pass", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
    port, emulator_port, receiver_port = free_port(), free_port(), free_port()
    var = tmp_path / "var"
    env = process_env(
        OPPSYNC_VAR_DIR=str(var),
        OPPSYNC_PORT=str(port),
        EMULATOR_PORT=str(emulator_port),
        # Its own Pub/Sub port: another process's stack may hold the demo's 7443.
        EMULATOR_PUBSUB_PORT=str(free_port()),
        DEMO_WEBHOOK_PORT=str(receiver_port),
        DEMO_OPPORTUNITIES="300",
        DEMO_PEOPLE="400",
        DEMO_SALES_TEAM_RATE="2",
        SALESFORCE_SYNC_INTERVAL="1",
        CELERY_HEARTBEAT_INTERVAL="2",
        SALESFORCE_CLIENT_ID="",
        SALESFORCE_CLIENT_SECRET="",
        # A real Redis broker: the file broker's own tests are in tests/integration/test_run_stack.py.
        REDIS_URL=redis_test_url("workers"),
    )
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    log = tmp_path / "stack.log"
    with running(["python", "manage.py", "run_stack"], env=env, log=log):
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _web_is_up(base), timeout=90, what="the web process", log=log)
        wait_until(
            lambda: (
                Opportunity.objects.count() >= 300
                and ContactRole.objects.filter(person__isnull=False).exists()
            ),
            timeout=120,
            what="the demo org synced",
            log=log,
        )
        org = EmulatorControl(f"https://localhost:{emulator_port}", var / "emulator" / "ca.pem")
        receiver = f"http://127.0.0.1:{receiver_port}/hooks/oppsync"
        yield {"base": base, "org": org, "log": log, "receiver": receiver}


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _busiest_person() -> Person:
    live = Q(contact_roles__is_deleted=False, contact_roles__opportunity__is_deleted=False)
    person = (
        Person.objects.filter(merged_into=None, is_deleted_in_salesforce=False)
        .exclude(last_name="")
        .annotate(roles=Count("contact_roles", filter=live))
        .order_by("-roles", "id")
        .first()
    )
    assert person is not None
    return person


def _amounts(page) -> list[float]:
    values = page.locator("#opportunity-info tbody td[data-value]").evaluate_all(
        "cells => cells.map(c => c.dataset.value)"
    )
    return [float(v) for v in values if v]


def test_a_marketer_finds_a_person_and_their_opportunities(demo_stack, browser):
    base = demo_stack["base"]
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    _login(page, base, "marketer")
    assert page.locator("text=Sync status").count() == 0  # not for marketers
    _shot(page, "01-home-marketer")

    person = _busiest_person()
    page.click("text=People")
    page.fill("#searchbar", person.last_name)
    page.press("#searchbar", "Enter")
    page.wait_for_selector(f"a[href*='/people/person/{person.pk}/change/']")
    _shot(page, "02-people-search")
    page.click(f"a[href*='/people/person/{person.pk}/change/']")
    page.wait_for_selector("#person-info")
    _shot(page, "03-person-info")

    page.click("#tab-opportunities")
    page.wait_for_selector("#opportunity-totals-cards")
    assert "tab=opportunities" in page.url  # a link can open the tab
    live_roles = ContactRole.objects.filter(
        person=person, is_deleted=False, opportunity__is_deleted=False
    ).count()
    assert page.locator("#opportunity-info tbody tr").count() == live_roles
    page.click("a[data-sort-key='amount']")
    page.wait_for_url("**sort=amount**")
    ascending = _amounts(page)
    assert ascending == sorted(ascending)
    page.click("a[data-sort-key='amount']")
    page.wait_for_url("**sort=-amount**")
    descending = _amounts(page)
    assert descending == sorted(descending, reverse=True)
    _shot(page, "04-person-opportunity-info")

    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, "05-person-opportunity-info-phone")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.click("#tab-activity")
    page.wait_for_selector("#activity-table")
    page.select_option("#activity-type", "added_to_opportunity")
    page.click("#activity-filters input[type=submit]")
    page.wait_for_url("**type=added_to_opportunity**")
    types = page.locator("#activity-table tbody tr[data-activity-type]").evaluate_all(
        "rows => rows.map(r => r.dataset.activityType)"
    )
    assert types and set(types) == {"added_to_opportunity"}
    _shot(page, "06-person-activity-log")

    page.click("#tab-opportunities")
    first = page.locator("#opportunity-info tbody td.name a").first
    name = first.inner_text()
    first.click()
    page.wait_for_selector("#opportunity-contact-roles")
    assert page.locator("#opportunity-name").inner_text() == name
    assert (
        page.locator(f"#opportunity-contact-roles a[href*='/people/person/{person.pk}/change/']").count() >= 1
    )
    _shot(page, "07-opportunity")

    page.goto(f"{base}/admin/opportunities/opportunity/?is_closed__exact=0")
    _shot(page, "08-opportunity-list")
    page.goto(f"{base}/admin/opportunities/activity/")
    _shot(page, "09-activity-list")
    page.goto(f"{base}/admin/sync-status/")
    assert (
        "403" in page.title()
        or page.locator("text=403").count()
        or page.locator("#sync-status-panel").count() == 0
    )


def test_an_administrator_sets_currency_and_time_zone_and_watches_the_sync(demo_stack, browser):
    base = demo_stack["base"]
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    _login(page, base, "administrator")
    _shot(page, "10-home-administrator")

    page.click("text=Settings")
    page.select_option("#id_default_currency", "EUR")
    page.select_option("#id_time_zone", "Europe/Amsterdam")
    _shot(page, "11-settings")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert "EUR · Europe/Amsterdam" in page.inner_text("#header")

    person = _busiest_person()
    page.goto(f"{base}/admin/people/person/{person.pk}/change/?tab=opportunities")
    assert "€" in page.inner_text("#total-opty-amount")
    assert "CET" in page.inner_text("#opportunity-info") or "CEST" in page.inner_text("#opportunity-info")

    page.goto(f"{base}/admin/sync-status/")
    page.evaluate("window.__stillTheSamePage = true")
    first = page.get_attribute("#sync-status-body", "data-refreshed-at")
    first_cycle = page.inner_text("#last-cycle-status") + page.inner_text("#sync-objects")
    # The panel refreshes itself (htmx) without a reload, and shows the sales team's changes.
    page.wait_for_function(
        "previous => document.querySelector('#sync-status-body').dataset.refreshedAt !== previous",
        arg=first,
        timeout=30_000,
    )
    page.wait_for_function(
        "previous => (document.querySelector('#last-cycle-status').innerText + document.querySelector('#sync-objects').innerText) !== previous",
        arg=first_cycle,
        timeout=60_000,
    )
    assert page.evaluate("window.__stillTheSamePage") is True
    assert page.locator("#sync-objects tbody tr").count() == 4
    # Every column, Failed and Backlog included, is visible beside the sidebar without scrolling.
    assert page.evaluate(
        "() => { const w = document.querySelector('#sync-objects').parentElement; return w.scrollWidth <= w.clientWidth; }"
    )
    assert page.locator(".os-chart svg").count() == 3
    _shot(page, "12-sync-status")
    # Changes arrive by themselves: no button or form on the page starts a sync.
    assert (
        page.locator("#content-main button, #content-main form, #content-main input[type=submit]").count()
        == 0
    )


def test_html_from_salesforce_is_shown_as_text_and_never_runs(demo_stack, browser):
    org = demo_stack["org"]
    (contact,) = org.create(
        "Contact", {"FirstName": XSS_SCRIPT, "LastName": XSS_NAME, "Email": "xss@example.com"}
    )
    (opportunity,) = org.create(
        "Opportunity",
        {
            "Name": f"{XSS_NAME} {'Very-long-opportunity-name-' * 8}",
            "StageName": "Prospecting",
            "CloseDate": "2027-01-31",
        },
    )
    org.create(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": contact, "Role": XSS_SCRIPT}
    )
    person = wait_until(
        lambda: Person.objects.filter(sf_contact_id=contact, contact_roles__isnull=False).first(),
        timeout=60,
        what="the contact with HTML in its name synced",
        log=demo_stack["log"],
    )
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _login(page, demo_stack["base"], "marketer")
    for tab in ("info", "opportunities", "activity"):
        page.goto(f"{demo_stack['base']}/admin/people/person/{person.pk}/change/?tab={tab}")
        assert XSS_NAME in page.inner_text("#person-name")
        assert page.evaluate("window.__xss") is None
    assert XSS_SCRIPT in page.inner_text("body")
    page.goto(f"{demo_stack['base']}/admin/people/person/{person.pk}/change/?tab=opportunities")
    _shot(page, "13-escaped-html-and-long-names")
    page.click("#opportunity-info tbody td.name a")
    page.wait_for_selector("#opportunity-name")
    assert page.evaluate("window.__xss") is None


def _live_count(page) -> int:
    page.wait_for_function("document.querySelector('#live-count').dataset.state === 'ok'")
    return int(page.get_attribute("#live-count", "data-count"))


def _drift_allowed(org: EmulatorControl, actions_before: int) -> int:
    """How far a count may have moved since the preview while the sales team works: each of its
    edits since `actions_before` (read just before the preview's count) moves at most the people
    of one opportunity (a stage, an amount, a role), and so may 3 edits made before it that the
    sync had not applied yet."""
    actions = int(org.stats()["sales_team_actions"]) - actions_before
    roles = ContactRole.objects.filter(is_deleted=False).values("opportunity").annotate(n=Count("pk"))
    most = max((row["n"] for row in roles), default=1)
    return (3 + actions) * max(most, 1)


def test_a_marketer_builds_a_smart_list_and_asks_why(demo_stack, browser):
    base = demo_stack["base"]
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US", accept_downloads=True)
    _login(page, base, "marketer")
    page.goto(f"{base}/admin/smartlists/smartlist/add/")
    page.wait_for_selector(".os-palette-item")
    page.fill("#palette-search", "opty")
    assert page.locator(".os-palette-item:visible").count() == 3  # the three totals
    page.fill("#palette-search", "")
    page.fill("#list-name", "Big deals, recently added")

    page.click("button[data-filter=has_opportunity]")
    page.select_option(".os-filter-card >> nth=0 >> .os-add-constraint", "Amount")
    page.select_option(".os-constraint >> nth=0 >> .os-operator", "at_least")
    page.fill(".os-constraint >> nth=0 >> .os-value", "1000")
    broad = _live_count(page)
    page.fill(".os-constraint >> nth=0 >> .os-value", "40000")
    page.wait_for_function(f"document.querySelector('#live-count').dataset.count !== '{broad}'")
    narrow = _live_count(page)
    assert narrow < broad  # the live count follows the constraint

    page.click("button[data-filter=was_added_to_opportunity]")
    page.select_option(".os-filter-card >> nth=1 >> .os-add-constraint", "date_of_activity")
    page.select_option(".os-filter-card >> nth=1 >> .os-operator", "in_past")
    page.click("button[data-filter=number_of_optys]")
    page.select_option(".os-filter-card >> nth=2 >> select >> nth=0", "at_least")
    page.fill(".os-filter-card >> nth=2 >> .os-value", "2")
    page.check("input[name=logic][value=advanced]")
    page.fill("#logic-rule", "1 and or 2")
    page.wait_for_function("document.querySelector('#logic-error').textContent.includes('position 7')")
    page.fill("#logic-rule", "1 and (2 or 3)")
    actions_before = int(demo_stack["org"].stats()["sales_team_actions"])
    count = _live_count(page)
    _shot(page, "14-smart-list-builder")

    page.click("#save-list")
    page.wait_for_selector("#members-table")
    members = int(page.get_attribute("#member-count", "data-count"))
    # The sales team keeps changing deals between preview and save.
    assert abs(members - count) <= _drift_allowed(demo_stack["org"], actions_before)
    _shot(page, "15-smart-list-members")
    with page.expect_download() as download:
        page.click("#download-csv")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "email,first_name,last_name,company,title"
    assert abs((len(lines) - 1) - count) <= _drift_allowed(demo_stack["org"], actions_before)

    if count:
        page.click(".os-why >> nth=0")
        page.wait_for_selector("#why-filters")
        assert "is a member" in page.inner_text("#why-verdict") or "is not a member" in page.inner_text(
            "#why-verdict"
        )
        assert page.locator("#why-filters li").count() == 3
        _shot(page, "16-smart-list-why")


def test_a_marketer_builds_a_trigger_campaign_and_watches_its_webhooks_arrive(demo_stack, browser):
    """The demo's receiver runs beside the stack: a campaign built in the editor fires on the sales
    team's changes, its deliveries appear with their answers, and a test delivery goes out."""
    from campaigns.models import Campaign, Delivery, DeliveryStatus
    from oppsync_site.management.commands.run_stack import DEMO_WEBHOOK_SECRET

    base = demo_stack["base"]
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    _login(page, base, "marketer")
    page.goto(f"{base}/admin/campaigns/campaign/")
    assert "Demo: deal changes to the local receiver" in page.inner_text("#result_list")  # make run's own
    page.goto(f"{base}/admin/campaigns/campaign/add/")
    page.wait_for_selector(".os-palette-trigger")
    page.fill("#list-name", "Primary contacts of new deals")
    page.click(".os-palette-trigger[data-filter='trigger:was_added_to_opportunity']")
    page.select_option(".os-trigger-card >> nth=0 >> .os-add-constraint", "IsPrimary")
    page.select_option(".os-trigger-card >> nth=0 >> .os-constraint >> nth=0 >> .os-operator", "is_true")
    page.fill("#webhook-url", "http://169.254.169.254/latest/meta-data/")
    page.fill("#webhook-secret", DEMO_WEBHOOK_SECRET)
    page.click("#save-list")
    page.wait_for_function(
        "document.querySelector('[data-error-for=\"webhook.url\"]').textContent.includes('link-local')"
    )
    page.fill("#webhook-url", demo_stack["receiver"])
    _shot(page, "17-campaign-editor")
    page.click("#save-list")
    page.wait_for_selector("#deliveries, .os-empty")
    campaign = Campaign.objects.get(name="Primary contacts of new deals")
    assert campaign.triggers == [
        {"trigger": "added_to_opportunity", "constraints": [{"field": "IsPrimary", "operator": "is_true"}]}
    ]
    page.click("#send-test")
    wait_until(
        lambda: Delivery.objects.filter(
            campaign=campaign, is_test=True, status=DeliveryStatus.SUCCEEDED
        ).exists(),
        timeout=60,
        what="the test delivery",
        log=demo_stack["log"],
    )
    # The sales team adds people to deals all the time; primary ones fire this campaign.
    wait_until(
        lambda: Delivery.objects.filter(
            campaign=campaign, is_test=False, status=DeliveryStatus.SUCCEEDED
        ).exists(),
        timeout=120,
        what="a delivery fired by a change in the org",
        log=demo_stack["log"],
    )
    page.reload()
    assert page.locator("#deliveries tr[data-status=succeeded]").count() >= 2
    assert "HTTP 200" in page.inner_text("#deliveries")
    _shot(page, "18-campaign-deliveries")

    # Without a secret typed in, OppSync makes one and shows it this once.
    page.goto(f"{base}/admin/campaigns/campaign/add/")
    page.wait_for_selector(".os-palette-trigger")
    page.fill("#list-name", "Removed people")
    page.click(".os-palette-trigger[data-filter='trigger:was_removed_from_opportunity']")
    page.uncheck("#campaign-active")
    page.fill("#webhook-url", demo_stack["receiver"])
    page.click("#save-list")
    page.wait_for_selector("#secret-once:not([hidden])")
    secret = page.inner_text("#secret-value")
    assert (
        secret.startswith("whsec_") and Campaign.objects.get(name="Removed people").webhook_secret == secret
    )
    page.goto(f"{base}/admin/campaigns/campaign/{Campaign.objects.get(name='Removed people').pk}/change/")
    page.wait_for_selector(".os-trigger-card")
    assert secret not in page.content()  # never shown again
