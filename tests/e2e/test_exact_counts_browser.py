"""In a real browser: the builder says "Counting…" while the exact count is under way and then
shows it, never the estimate; a raw admin list that shows the estimate reads "about N".

The preview request is held in the browser until the test lets it go, so the waiting state is
seen for certain rather than caught by luck. The estimate is replaced by a number the list does
not hold (tests/unit/test_exact_counts.py), so a count that read it would show it. Screenshots go
to the test's tmp_path.
"""

from __future__ import annotations

import pytest

from tests.unit.smartlists.conftest import fields  # noqa: F401  (the fixture)
from tests.unit.test_exact_counts import emea, impossible_estimate, threshold_one  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _login(page, base: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "mark-marketer")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_the_builder_counts_then_shows_the_exact_number_and_a_raw_list_says_about(
    live_server,
    browser,
    marketer,
    emea,  # noqa: F811
    impossible_estimate,  # noqa: F811
    tmp_path,
):
    smart_list, _ = emea
    page = browser.new_page(viewport={"width": 1366, "height": 760}, locale="en-US")
    _login(page, live_server.url)
    held = []
    page.route("**/api/v1/smart-lists/preview/**", lambda route: held.append(route))
    page.goto(f"{live_server.url}/admin/smartlists/smartlist/{smart_list.pk}/change/")
    page.wait_for_function("document.querySelector('#live-count').dataset.state === 'loading'")
    assert page.inner_text("#live-count") == "Counting…"
    assert page.get_attribute("#live-count", "data-count") is None
    page.screenshot(path=str(tmp_path / "builder-counting.png"))

    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function("document.querySelector('#live-count').dataset.state === 'ok'")
    assert page.get_attribute("#live-count", "data-count") == "7"
    assert page.inner_text("#live-count") == "7 people"
    assert page.locator("#preview-table tbody tr").count() == 7
    page.screenshot(path=str(tmp_path / "builder-exact-count.png"))

    page.goto(f"{live_server.url}/admin/people/person/")
    assert page.inner_text("p.paginator #result-count") == "about 988,000"
    assert "about 988,000 people" in " ".join(page.text_content("p.paginator").split())
    page.screenshot(path=str(tmp_path / "people-list-about.png"), full_page=True)
