#!/usr/bin/env python
"""Development shortcut: the same as the `ketasafe` command."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from ketasafe.cli import main  # noqa: E402

main()
