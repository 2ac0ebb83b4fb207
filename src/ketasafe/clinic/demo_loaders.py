"""Each app adds its part of the demo clinic here, in order, explicitly."""

from __future__ import annotations

import random

from .demo_data import DemoContext, load_base


def load_demo(seed: int = 2026) -> DemoContext:
    """Load the whole demo clinic (idempotent: what exists already is kept)."""
    # Imported here: the clinic app sits below the apps whose demo data it loads.
    from ketasafe.monitoring import demo as monitoring_demo
    from ketasafe.screening import demo as screening_demo
    from ketasafe.sessions import demo as sessions_demo

    ctx = load_base(random.Random(seed))
    screening_demo.load(ctx)   # screenings at every state, consents, REMS enrollments
    sessions_demo.load(ctx)    # chairs, orders, a day of sessions
    monitoring_demo.load(ctx)  # code map, devices, monitor history of sessions in progress
    return ctx
