"""The hash-chained audit log. Write it only through `record` (compliance B.3, B.4)."""

from typing import Any


def record(*args: Any, **kwargs: Any) -> Any:
    # Imported lazily so `from ketasafe import audit` works before the app registry is ready.
    from .services import record as _record

    return _record(*args, **kwargs)
