"""Loaded by pytest with `-p` (pyproject addopts) before pytest-django reads the settings.

Each test run gets its own data folder, so concurrent runs never share a test database file,
and tests never write into ./var. Test-only switches: see the last block of settings.py.
"""

import os
import tempfile

os.environ.setdefault("KETASAFE_TESTING", "1")
os.environ.setdefault("KETASAFE_DATA_DIR", tempfile.mkdtemp(prefix="ketasafe-test-"))
