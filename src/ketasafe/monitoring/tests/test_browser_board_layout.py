"""On the chair board each value stays on one line with its trend arrow, inside its chair, at the
narrowest chair the grid makes (about 280 px), even with the widest values (BP 188/112, SpO2 100%)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from ketasafe.conftest import TEST_PASSWORD, browser_login
from ketasafe.monitoring.models import Observation

from .helpers import make_chair, make_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Previous and latest value of each kind: every one moves enough to show ↑ or ↓.
WIDEST = {"systolic": (170, 188), "diastolic": (100, 112), "heart_rate": (110, 128),
          "spo2": (96, 100), "resp_rate": (28, 18)}

# For each value: its text and arrow on one line (the arrow's box overlaps the value's line box),
# and no part of it outside its own column (so not over its neighbour) nor outside the chair's
# content box.
MEASURE = """() => [...document.querySelectorAll('dl.vitals dd')].map(dd => {
  const column = dd.parentElement.getBoundingClientRect();
  const box = dd.closest('dl').getBoundingClientRect();
  const range = document.createRange();
  range.setStart(dd.firstChild, 0);
  range.setEnd(dd.firstChild, dd.firstChild.textContent.trimEnd().length);
  const value = range.getBoundingClientRect();
  const trend = dd.querySelector('.trend');
  const arrow = trend ? trend.getBoundingClientRect() : value;
  return {label: dd.previousElementSibling.textContent, text: dd.textContent.trim(),
          sameLine: arrow.top < value.bottom && arrow.bottom > value.top,
          inside: value.left >= column.left - 0.5 && arrow.right <= column.right + 0.5
          && value.left >= box.left - 0.5 && arrow.right <= box.right + 0.5};
})"""


@pytest.mark.parametrize("chair_px", [272, 280])
def test_values_and_trend_arrows_stay_on_one_line_in_a_narrow_chair(chair_px, make_staff, make_patient,
                                                                    live_server, browser_page):
    nurse = make_staff("nurse")
    session = make_session(make_patient(), chair=make_chair())
    now = timezone.now()
    Observation.objects.bulk_create([
        Observation(session=session, patient=session.patient, kind=kind, value=Decimal(v), observed_at=at,
                    source="monitor")
        for kind, values in WIDEST.items()
        for v, at in zip(values, (now - dt.timedelta(seconds=60), now), strict=True)])
    page = browser_page
    browser_login(page, live_server.url, nurse.username, TEST_PASSWORD)
    page.goto(f"{live_server.url}/monitoring/")
    # The grid's narrowest chair is minmax(17rem, 1fr) = 272 px; pin the width so the test does
    # not depend on the window size.
    page.add_style_tag(content=f".chairs {{ grid-template-columns: repeat(auto-fill, {chair_px}px) !important; }}")
    page.wait_for_selector("dl.vitals dd .trend")
    cells = page.evaluate(MEASURE)
    assert [c["text"] for c in cells] == ["188/112↑", "128↑", "100%↑", "18↓"]
    assert [c["label"] for c in cells if not c["sameLine"]] == []
    assert [c["label"] for c in cells if not c["inside"]] == [], cells
