"""A new user takes a patient from intake to a signed screening and a signed consent, in a browser."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketasafe.conftest import TEST_PASSWORD, browser_login
from ketasafe.consent.gate import treatment_allowed
from ketasafe.consent.models import ConsentSignature
from ketasafe.screening.models import Screening, Status
from ketasafe.screening.tests.helpers import published

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROTOCOL = "iv-ketamine-depression"


def _logout(page):
    page.click("header .who button")
    page.wait_for_url("**/login/**")


def test_intake_to_signed_screening_and_signed_consent(live_server, browser_page, make_staff, make_patient):
    nurse = make_staff("nurse", username="nurse_new")
    prescriber = make_staff("prescriber", username="dr_new")
    published(make_staff("clinic_admin"), PROTOCOL)
    patient = make_patient(given_name="Robin", family_name="Example")
    page = browser_page
    url = live_server.url

    # The nurse starts the intake from the patient page and runs the screening.
    browser_login(page, url, nurse.username, TEST_PASSWORD)
    page.goto(f"{url}/patients/{patient.pk}/")
    banner = page.locator(f'[data-protocol="{PROTOCOL}"]')
    expect(banner).to_contain_text("Needs screening")
    banner.get_by_role("link", name="start screening intake").click()
    page.fill("#id_indication", "Treatment-resistant depression")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text(\"Screening intake\")")
    page.fill("#id_systolic", "124")
    page.fill("#id_diastolic", "78")
    page.fill("#id_heart_rate", "72")
    page.fill("#id_spo2", "98")
    for i in range(1, 10):
        page.select_option(f"#id_phq9_{i}", "1" if i < 9 else "0")
    for i in (1, 2, 6):
        page.select_option(f"#id_cssrs_{i}", "0")
    page.click("button[name=run]")
    expect(page.locator("#decision")).to_have_text("eligible")
    expect(page.locator("text=Awaiting a prescriber's sign-off")).to_be_visible()
    _logout(page)

    # The prescriber signs it.
    browser_login(page, url, prescriber.username, TEST_PASSWORD)
    page.goto(f"{url}/patients/{patient.pk}/")
    page.locator(f'[data-protocol="{PROTOCOL}"]').get_by_role("link", name="open screening").click()
    page.get_by_role("button", name="Sign screening").click()
    expect(page.locator(f'[data-protocol="{PROTOCOL}"]')).to_have_attribute("data-state", "eligible")
    assert Screening.objects.get(patient=patient).status == Status.SIGNED

    # The patient signs the consent on the device; the prescriber witnesses with their password.
    page.locator(f'[data-protocol="{PROTOCOL}"]').get_by_role("link", name="sign consent v1").click()
    page.fill("#id_typed_name", "Robin Example")
    box = page.locator("#signature-pad").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + 100)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 20 + step * 12, box["y"] + 100 + (25 if step % 2 else -25), steps=2)
    page.mouse.up()
    assert page.input_value("#id_signature").startswith("data:image/png;base64,")
    assert page.input_value("#id_witness_username") == prescriber.username
    page.fill("#id_witness_password", TEST_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator("#signed-consent")).to_contain_text("Robin Example")
    signature = ConsentSignature.objects.get(patient=patient)
    assert signature.witness == prescriber
    # The printed view shows the stored drawing.
    # (wait_for_function polls with eval, which the page's CSP rightly forbids)
    width = page.evaluate("""() => new Promise(done => {
        const img = document.querySelector('#signed-consent img');
        if (img.complete) { done(img.naturalWidth); } else { img.onload = () => done(img.naturalWidth); }
    })""")
    assert width > 0
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed
