"""Reliability: SIGKILL the real listener process in the middle of a burst. Every message that
was acknowledged is in the database exactly once, with all its observations (nothing half
stored); after a restart the monitors' resends are acknowledged and still stored once.

The listener runs as a subprocess on a fresh SQLite database in a temporary data folder (the
test database of this run is not reachable from another process), read back with sqlite3."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ketasafe.monitoring.hl7.mllp import MllpDecoder, frame

from .helpers import ack_fields, oru

pytestmark = pytest.mark.slow
OBX_PER_MESSAGE = 7


def start_listener(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(KETASAFE_DATA_DIR=str(data_dir), KETASAFE_LOG_LEVEL="ERROR", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ketasafe.cli", "mllp_listen", "--host", "127.0.0.1",
                             "--port", "0", "--watch-interval", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("MLLP listener on "):
            return proc, int(line.rsplit(":", 1)[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the listener did not start")


def chair(port: int, n: int, acked: list[str], stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            decoder = MllpDecoder()
            i = 0
            while not stop.is_set():
                control_id = f"K{n}-{i}"
                sock.sendall(frame(oru(control_id, bed=f"BED{n}")))
                acks: list[bytes] = []
                while not acks:
                    data = sock.recv(65536)
                    if not data:
                        return
                    acks = decoder.feed(data)
                fields = ack_fields(acks[0])
                if fields[1] == "AA":
                    assert fields[2] == control_id
                    acked.append(control_id)
                i += 1
    except OSError:
        return  # the listener was killed under us


def stored(db: Path) -> tuple[dict[str, int], dict[str, int]]:
    with sqlite3.connect(db) as conn:
        messages = dict(conn.execute(
            "SELECT control_id, COUNT(*) FROM monitoring_inboundmessage GROUP BY control_id").fetchall())
        observations = dict(conn.execute(
            "SELECT m.control_id, COUNT(o.id) FROM monitoring_inboundmessage m "
            "LEFT JOIN monitoring_observation o ON o.message_id = m.id GROUP BY m.id").fetchall())
    return messages, observations


def test_sigkill_mid_burst_loses_no_acknowledged_message_and_stores_none_twice(tmp_path: Path) -> None:
    proc, port = start_listener(tmp_path)
    acked: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=chair, args=(port, n, acked, stop), daemon=True) for n in range(8)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-burst: clients are still sending
        proc.wait(10)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    for t in threads:
        t.join(15)
    assert len(acked) >= 150
    messages, observations = stored(tmp_path / "ketasafe.sqlite3")
    missing = [c for c in acked if c not in messages]
    assert missing == [], f"acknowledged but not stored: {missing[:5]}"
    assert all(n == 1 for n in messages.values())
    assert all(n == OBX_PER_MESSAGE for n in observations.values()), "a message was half stored"

    # The monitors reconnect and resend everything they sent before, acknowledged or not.
    proc, port = start_listener(tmp_path)
    try:
        resend = sorted(set(acked) | set(messages) | {"K0-999999"})
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            decoder = MllpDecoder()
            for control_id in resend:
                n = control_id[1:].split("-")[0]
                sock.sendall(frame(oru(control_id, bed=f"BED{n}")))
                acks: list[bytes] = []
                while not acks:
                    acks = decoder.feed(sock.recv(65536))
                assert ack_fields(acks[0])[1:3] == ["AA", control_id]
    finally:
        proc.terminate()
        proc.wait(15)
    messages, observations = stored(tmp_path / "ketasafe.sqlite3")
    assert set(resend) <= set(messages)
    assert all(n == 1 for n in messages.values())
    assert all(n == OBX_PER_MESSAGE for n in observations.values())
