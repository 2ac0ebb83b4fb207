"""A nurse of the demo clinic logs in and opens a patient, in a real browser."""

import pytest
from playwright.sync_api import expect

from ketasafe.clinic.demo_data import read_logins
from ketasafe.clinic.demo_loaders import load_demo
from ketasafe.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_nurse_logs_in_and_opens_a_patient(live_server, browser_page) -> None:
    load_demo()
    page = browser_page
    browser_login(page, live_server.url, "nurse", read_logins()["nurse"])
    page.goto(f"{live_server.url}/patients/")
    page.fill("input[name=q]", "DEMO-0003")
    rows = page.locator("#patient-rows tbody tr")
    expect(rows).to_have_count(1)  # the live search replaced the list
    rows.locator("a").click()
    page.wait_for_selector("h1")
    assert "MRN DEMO-0003" in page.inner_text("h1")
    assert page.is_visible("text=Problem list")
