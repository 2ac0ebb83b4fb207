"""For the concurrency tests: calls on threads of their own (each with its own database
connection, as two requests or a request and the listener have), made to overlap for sure.

Use with ``pytest.mark.django_db(transaction=True)``: the threads must see committed data."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections


def in_threads(calls: dict[str, Callable[[], Any]], *, together: bool = False) -> dict[str, Any]:
    """Run each call on a thread named by its key (``together``: released at the same moment);
    return what each returned or raised, by name. Fails if a thread is still waiting after a
    minute (a lock never released)."""
    barrier = threading.Barrier(len(calls)) if together else None
    results: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            if barrier is not None:
                barrier.wait(timeout=10)
            results[name] = call()
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            results[name] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(name, call), name=name) for name, call in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is still waiting (a lock never released)"
    return results


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """``in_threads`` released together, results in the order of ``calls``."""
    results = in_threads({f"call-{i}": call for i, call in enumerate(calls)}, together=True)
    return [results[f"call-{i}"] for i in range(len(calls))]


def slow_audit(monkeypatch: pytest.MonkeyPatch, *, seconds: float = 0.3,
               threads: Callable[[str], bool] | None = None) -> threading.Event:
    """Make each audit write of the chosen threads (by name; default: every thread but the main
    one) wait ``seconds`` first. An audit write comes after a service's checks and locks and
    before its commit, so the other thread's call overlaps it every time, not only when the
    threads happen to interleave. Returns an event set when a chosen thread first gets there
    (it holds its locks from then until it commits)."""
    from ketasafe import audit

    real = audit.record
    reached = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        current = threading.current_thread()
        if current is not threading.main_thread() and (threads is None or threads(current.name)):
            reached.set()
            time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", slow)
    return reached
