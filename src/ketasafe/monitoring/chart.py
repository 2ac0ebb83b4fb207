"""The session vitals chart as plain SVG geometry (no JavaScript: the CSP allows none inline).

``chart_panels(points, thresholds, baseline, ...)`` is pure: readings in, panels of polylines,
threshold lines and axis labels out; the template only prints the numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .alert_rules import AlertThresholds

WIDTH, HEIGHT = 640, 150
PAD_L, PAD_R, PAD_T, PAD_B = 44, 10, 10, 22

# (panel title, unit, kinds with their CSS class, fixed y range, threshold lines)
PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[int, int]], ...] = (
    ("Blood pressure", "mmHg", (("systolic", "sys"), ("diastolic", "dia")), (40, 220)),
    ("Heart rate", "/min", (("heart_rate", "hr"), ("pulse_rate", "pr")), (30, 160)),
    ("SpO2", "%", (("spo2", "spo2"),), (80, 100)),
    ("Respiratory rate", "/min", (("resp_rate", "rr"),), (0, 40)),
)


@dataclass
class Line:
    css: str
    label: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, tooltip


@dataclass
class Rule:
    y: float
    label: str
    css: str

    @property
    def label_y(self) -> float:
        return round(self.y - 3, 1)


@dataclass
class Panel:
    title: str
    unit: str
    lines: list[Line]
    rules: list[Rule]
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = False


def _thresholds_for(kind_title: str, th: AlertThresholds,
                    baseline: Mapping[str, Decimal]) -> list[tuple[Decimal, str, str]]:
    if kind_title == "Blood pressure":
        rules = [(th.systolic_high, f"SBP {th.systolic_high}", "limit"),
                 (th.diastolic_high, f"DBP {th.diastolic_high}", "limit")]
        if "systolic" in baseline:
            rise = baseline["systolic"] + th.rise_systolic
            rules.append((rise, f"baseline +{th.rise_systolic}", "rise"))
        if "diastolic" in baseline:
            rise = baseline["diastolic"] + th.rise_diastolic
            rules.append((rise, f"baseline +{th.rise_diastolic}", "rise"))
        return rules
    if kind_title == "Heart rate":
        return [(th.hr_high, f"> {th.hr_high}", "limit"), (th.hr_low, f"< {th.hr_low}", "limit")]
    if kind_title == "SpO2":
        return [(th.spo2_low, f"< {th.spo2_low}", "limit")]
    return [(th.rr_low, f"< {th.rr_low}", "limit")]


def chart_panels(points: Iterable[tuple[str, dt.datetime, Decimal]], thresholds: AlertThresholds,
                 baseline: Mapping[str, Decimal], *, tz: dt.tzinfo,
                 start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[Panel]:
    by_kind: dict[str, list[tuple[dt.datetime, Decimal]]] = {}
    for kind, at, value in points:
        by_kind.setdefault(kind, []).append((at, value))
    times = [at for series in by_kind.values() for at, _ in series]
    t0 = start or (min(times) if times else None)
    t1 = end or (max(times) if times else None)
    if t0 is None or t1 is None:
        t0 = t1 = dt.datetime.now(dt.UTC)
    if t1 <= t0:
        t1 = t0 + dt.timedelta(minutes=10)
    span = (t1 - t0).total_seconds()
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x_of(at: dt.datetime) -> float:
        return round(PAD_L + plot_w * (at - t0).total_seconds() / span, 1)

    step_min = next((m for m in (5, 10, 15, 30, 60, 120) if span / 60 / m <= 8), 240)
    x_ticks = []
    tick = t0.replace(second=0, microsecond=0)
    tick += dt.timedelta(minutes=(-tick.minute) % step_min)
    while tick <= t1:
        x_ticks.append((x_of(tick), tick.astimezone(tz).strftime("%H:%M")))
        tick += dt.timedelta(minutes=step_min)

    panels = []
    for title, unit, kinds, (low, high) in PANELS:
        values = [v for kind, _css in kinds for _, v in by_kind.get(kind, [])]
        rule_values = _thresholds_for(title, thresholds, baseline)
        lo = min([low, *(int(v) - 5 for v in values)])
        hi = max([high, *(int(v) + 5 for v in values)])

        def y_of(value: Decimal, lo: int = lo, hi: int = hi) -> float:
            return round(PAD_T + plot_h * (1 - (float(value) - lo) / (hi - lo)), 1)

        lines = []
        for kind, css in kinds:
            series = by_kind.get(kind, [])
            if not series:
                continue
            series.sort()
            pts = " ".join(f"{x_of(at)},{y_of(v)}" for at, v in series)
            dots = [(x_of(at), y_of(v), f"{v.normalize():f} {unit} at {at.astimezone(tz):%H:%M}") for at, v in series]
            lines.append(Line(css, kind.replace("_", " "), pts, dots))
        rules = [Rule(y_of(v), label, css) for v, label, css in rule_values if lo <= v <= hi]
        ticks_step = max(5, ((hi - lo) // 4 // 5) * 5)
        y_ticks = [(y_of(Decimal(v)), v) for v in range((lo // ticks_step + 1) * ticks_step, hi, ticks_step)]
        panels.append(Panel(title, unit, lines, rules, y_ticks, x_ticks, empty=not lines))
    return panels
