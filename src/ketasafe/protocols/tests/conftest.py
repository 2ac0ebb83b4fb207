from __future__ import annotations

from ketasafe.sessions.tests.conftest import gate, now, patient, team  # noqa: F401
