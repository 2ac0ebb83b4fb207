"""Each app adds its part of the demo clinic here, in order, explicitly."""

from __future__ import annotations

import random
from collections.abc import Callable

from .demo_data import DemoContext, load_base

# (label, loader). Apps built later append their loader: screening, consent, orders, sessions...
LOADERS: list[tuple[str, Callable[[DemoContext], None]]] = []
LOADERS.append(("screening and consent", lambda ctx: __import__("ketasafe.screening.demo", fromlist=["load"]).load(ctx)))
LOADERS.append(("orders and sessions",
                lambda ctx: __import__("ketasafe.sessions.demo", fromlist=["load"]).load(ctx)))


def load_demo(seed: int = 2026) -> DemoContext:
    ctx = load_base(random.Random(seed))
    for _label, loader in LOADERS:
        loader(ctx)
    return ctx
