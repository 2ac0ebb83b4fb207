"""A whole esketamine session and a whole IV session in a real browser, from check-in to
discharge, each with a refused pre-check and an override confirmed by a second clinician.

Time is pinned by moving the recorded dosing times into the past (the test's own set-up), never by
waiting: e.g. after the first device the administration is shifted 119 minutes back, so the next
device may be given and discharge is first refused at 119 minutes and then allowed at 121.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone
from playwright.sync_api import expect

from ketasafe.conftest import TEST_PASSWORD, browser_login
from ketasafe.sessions.models import Administration, DeviceDose, TreatmentSession
from ketasafe.sessions.state import Status

from . import helpers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shift_dosing(session: TreatmentSession, minutes: int, *, stopped_too: bool = True) -> None:
    """Test set-up: pretend dosing began ``minutes`` earlier than it did (times only)."""
    delta = dt.timedelta(minutes=minutes)
    TreatmentSession.objects.filter(pk=session.pk).update(dosing_started_at=F("dosing_started_at") - delta)
    adm = Administration.objects.filter(session=session)
    adm.update(started_at=F("started_at") - delta)
    if stopped_too:
        adm.exclude(stopped_at=None).update(stopped_at=F("stopped_at") - delta)
    DeviceDose.objects.filter(administration__session=session).update(given_at=F("given_at") - delta)


def _status(session: TreatmentSession) -> str:
    return TreatmentSession.objects.get(pk=session.pk).status


def _logout(page: Any) -> None:
    page.click("header .who button")
    page.wait_for_url("**/login/**")


def _setup(make_staff: Any, make_patient: Any, gate: Any, protocol: str) -> dict[str, Any]:
    team = {"prescriber": make_staff("prescriber", username="dr_okafor"),
            "nurse": make_staff("nurse", username="rn_garcia"),
            "nurse2": make_staff("nurse", username="rn_chen")}
    patient = make_patient()
    order = helpers.sign_order(patient, team["prescriber"], protocol,
                               at=timezone.now() - dt.timedelta(days=1))
    session = helpers.schedule(order, team["nurse"], timezone.now() - dt.timedelta(minutes=5),
                               prescriber=team["prescriber"])
    return {**team, "patient": patient, "session": session}


def _pre_dose(page: Any, url: str, session: TreatmentSession, prescriber: Any, *,
              ride_home: str, systolic: str) -> None:
    page.goto(f"{url}/sessions/")
    page.click(f"#checkin-{session.pk} button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "checked_in")
    form = page.locator("#step-checklist")
    form.locator("select[name=prescriber_on_site]").select_option(str(prescriber.pk))
    form.locator("select[name=fasting_confirmed]").select_option("yes")
    form.locator("select[name=ride_home_arranged]").select_option(ride_home)
    for name in ("benzodiazepines", "nonbenzo_hypnotics", "psychostimulants", "maois", "opioids"):
        form.locator(f"select[name={name}]").select_option("no")
    form.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("Checklist saved")
    check = page.locator("#step-check")
    check.locator("input[name=systolic]").fill(systolic)
    check.locator("input[name=diastolic]").fill("84")
    check.locator("input[name=heart_rate]").fill("72")
    check.locator("input[name=spo2]").fill("98")
    check.locator("select[name=moaas]").select_option("5")
    check.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("recorded")


def _override_bp_high(page: Any, url: str, session: TreatmentSession, prescriber: Any,
                      second: Any) -> None:
    browser_login(page, url, prescriber.username, TEST_PASSWORD)
    page.goto(f"{url}/sessions/{session.pk}/")
    page.click("details.override summary")
    page.fill("#reason-BP-HIGH", "Baseline BP is usually 145-150; benefit outweighs the rise.")
    page.fill("#cu-BP-HIGH", second.username)
    page.fill("#cp-BP-HIGH", "not-the-password")
    page.click("#override-BP-HIGH button")
    expect(page.locator("#refusal")).to_contain_text("password did not match")
    page.click("details.override summary") if not page.is_visible("#cp-BP-HIGH") else None
    page.fill("#reason-BP-HIGH", "Baseline BP is usually 145-150; benefit outweighs the rise.")
    page.fill("#cu-BP-HIGH", second.username)
    page.fill("#cp-BP-HIGH", TEST_PASSWORD)
    page.click("#override-BP-HIGH button")
    expect(page.locator(".messages")).to_contain_text("BP-HIGH overridden")
    expect(page.locator("tr[data-check=BP-HIGH]")).to_contain_text("overridden")
    _logout(page)


def _discharge(page: Any) -> None:
    form = page.locator("#step-discharge")
    form.locator("input[name=responsible_adult_present]").check()
    form.locator("input[name=driving_instructions_given]").check()
    form.locator("button").click()


def _final_check(page: Any, systolic: str = "126") -> None:
    check = page.locator("#step-check")
    check.locator("input[name=systolic]").fill(systolic)
    check.locator("input[name=diastolic]").fill("80")
    check.locator("input[name=spo2]").fill("98")
    check.locator("select[name=moaas]").select_option("5")
    check.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("recorded")


def test_whole_esketamine_session_in_the_browser(live_server, browser_page, make_staff,
                                                 make_patient, gate) -> None:
    ctx = _setup(make_staff, make_patient, gate, "esketamine-trd")
    session, page, url = ctx["session"], browser_page, live_server.url

    browser_login(page, url, ctx["nurse"].username, TEST_PASSWORD)
    _pre_dose(page, url, session, ctx["prescriber"], ride_home="yes", systolic="152")
    page.click("#step-prechecks button")  # refused: BP-HIGH is a soft stop
    expect(page.locator("#refusal")).to_contain_text("BP-HIGH")
    assert _status(session) == Status.CHECKED_IN
    _logout(page)

    _override_bp_high(page, url, session, ctx["prescriber"], ctx["nurse2"])

    browser_login(page, url, ctx["nurse"].username, TEST_PASSWORD)
    page.goto(f"{url}/sessions/{session.pk}/")
    page.click("#step-prechecks button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "pre_checks_passed")
    expect(page.locator("#computed-dose")).to_contain_text("56 mg = 2 devices")
    start = page.locator("#step-start_dosing")
    start.locator("input[name=lot_number]").fill("SPR-2611A")
    start.locator("button").click()
    expect(page.locator("#session-status")).to_have_attribute("data-status", "dosing")
    page.click("#step-device button")  # too soon after device 1
    expect(page.locator("#refusal")).to_contain_text("at least 5 min after device 1")

    _shift_dosing(session, 119)
    page.goto(f"{url}/sessions/{session.pk}/")
    page.click("#step-device button")
    expect(page.locator("#devices li")).to_have_count(2)
    page.click("#step-finish_dosing button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "monitoring")
    expect(page.locator("#overdue-checks")).to_contain_text("post-dose")
    expect(page.locator("#step-check input[name=code]")).to_have_value("post-dose")
    _final_check(page, systolic="141")
    page.click("#step-recovery button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "recovery")
    _final_check(page)
    _discharge(page)  # 119 minutes after the first device: refused
    expect(page.locator("#refusal")).to_contain_text("MIN-MONITORING")
    assert _status(session) == Status.RECOVERY

    _shift_dosing(session, 2)
    page.goto(f"{url}/sessions/{session.pk}/")
    _discharge(page)
    expect(page.locator("#session-status")).to_have_attribute("data-status", "discharged")

    page.goto(f"{url}/sessions/forms-due/")
    expect(page.locator("#forms-due")).to_contain_text(ctx["patient"].full_name)
    page.goto(f"{url}/sessions/{session.pk}/record/")
    expect(page.locator("#pmf-fields")).to_contain_text("SPR-2611A")
    expect(page.locator("#pmf-fields")).to_contain_text("56 mg")


def test_whole_iv_session_in_the_browser(live_server, browser_page, make_staff, make_patient,
                                         gate) -> None:
    ctx = _setup(make_staff, make_patient, gate, "iv-ketamine-depression")
    session, page, url = ctx["session"], browser_page, live_server.url

    browser_login(page, url, ctx["nurse2"].username, TEST_PASSWORD)
    _pre_dose(page, url, session, ctx["prescriber"], ride_home="no", systolic="146")
    page.click("#step-prechecks button")  # refused: no ride home (hard) and BP-HIGH (soft)
    expect(page.locator("#refusal")).to_contain_text("RIDE-HOME")
    expect(page.locator("#refusal")).to_contain_text("BP-HIGH")
    page.locator("#step-checklist select[name=ride_home_arranged]").select_option("yes")
    page.locator("#step-checklist button").click()
    expect(page.locator(".messages")).to_contain_text("Checklist saved")
    _logout(page)

    _override_bp_high(page, url, session, ctx["prescriber"], ctx["nurse"])

    browser_login(page, url, ctx["nurse2"].username, TEST_PASSWORD)
    page.goto(f"{url}/sessions/{session.pk}/")
    page.click("#step-prechecks button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "pre_checks_passed")
    expect(page.locator("#computed-dose")).to_contain_text("40 mg")  # 80 kg x 0.5 mg/kg
    start = page.locator("#step-start_dosing")
    start.locator("input[name=lot_number]").fill("KET-10-551")
    start.locator("button").click()
    expect(page.locator("#session-status")).to_have_attribute("data-status", "dosing")
    rate = page.locator("#step-rate")
    rate.locator("input[name=rate_ml_per_h]").fill("120")
    rate.locator("input[name=reason]").fill("patient dizzy")
    rate.locator("button").click()
    expect(page.locator("#administration")).to_contain_text("120.0 mL/h")
    page.click("#step-finish_dosing button")  # 40-minute infusion stopped at once: needs a reason
    expect(page.locator("#refusal")).to_contain_text("stopping early needs a reason")

    _shift_dosing(session, 41)
    page.goto(f"{url}/sessions/{session.pk}/")
    expect(page.locator("#overdue-checks")).to_contain_text("during-10")
    page.click("#step-finish_dosing button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "monitoring")
    _final_check(page, systolic="138")
    page.click("#step-recovery button")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "recovery")
    _final_check(page)
    _discharge(page)  # the infusion stopped just now: refused
    expect(page.locator("#refusal")).to_contain_text("MIN-MONITORING")

    _shift_dosing(session, 16)
    page.goto(f"{url}/sessions/{session.pk}/")
    _final_check(page)
    _discharge(page)
    expect(page.locator("#session-status")).to_have_attribute("data-status", "discharged")
    page.goto(f"{url}/sessions/{session.pk}/record/")
    expect(page.locator("main")).to_contain_text("KET-10-551")
