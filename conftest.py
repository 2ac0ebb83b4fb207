import os
import tempfile

# Test-only settings switches (see settings.py, last block); tests never write into ./var.
os.environ.setdefault("KETASAFE_TESTING", "1")
os.environ.setdefault("KETASAFE_DATA_DIR", tempfile.mkdtemp(prefix="ketasafe-test-"))
