"""Hot path: durable, acknowledged HL7 ingest through the real MLLP listener.

Starts `ketasafe mllp_listen` as a subprocess on a fresh SQLite database in a temporary data
folder, sends a realistic PCD-01 ORU^R01 (7 OBX, 5 vital numerics, unique MSH-10 each) from 20
concurrent monitor connections, each waiting for its ACK before sending the next (as monitors
do), and counts only AA answers: an AA means the message is committed (synchronous=FULL in the
listener). Bare `hl7.parse` of the same message is measured in the same run, before the load.

Run: .venv/bin/python benchmarks/ingest.py [--connections 20] [--seconds 10] [--batch-max 64]
Last line: ingest_msgs_per_s=... p50_ms=... p99_ms=... hl7_parse_msgs_per_s=... ratio=...
(ratio = ingest_msgs_per_s / hl7_parse_msgs_per_s, as issue 5 defines it)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import hl7  # noqa: E402

from ketasafe.monitoring.hl7.mllp import MllpDecoder, frame  # noqa: E402
from ketasafe.monitoring.simulator import Vitals, build_oru  # noqa: E402

VITALS = Vitals(systolic=132, diastolic=84, heart_rate=71, spo2=97, resp_rate=14)
AT = dt.datetime(2026, 3, 1, 10, 15, tzinfo=dt.UTC)


def message(control_id: str, chair: int) -> bytes:
    return build_oru(control_id=control_id, at=AT, vitals=VITALS, bed=f"KETA^CHAIR^{chair}", mrn="MRN0042",
                     device=f"0012A3FFFE{chair:06X}")


def parse_rate() -> float:
    text = message("BENCH-PARSE", 1).decode()
    timer = timeit.Timer(lambda: hl7.parse(text))
    number = 2000
    return number / min(timer.repeat(repeat=5, number=number))


def start_listener(data_dir: Path, batch_max: int) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(KETASAFE_DATA_DIR=str(data_dir), KETASAFE_LOG_LEVEL="ERROR", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ketasafe.cli", "mllp_listen", "--host", "127.0.0.1",
                             "--port", "0", "--watch-interval", "0", "--batch-max", str(batch_max)],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("MLLP listener on "):
            return proc, int(line.rsplit(":", 1)[1])
    raise SystemExit("the listener did not start")


async def monitor(port: int, n: int, until: float, latencies: list[float], counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = MllpDecoder()
    i = 0
    while time.perf_counter() < until:
        raw = frame(message(f"BENCH-{n}-{i}", n))
        started = time.perf_counter()
        writer.write(raw)
        await writer.drain()
        acks: list[bytes] = []
        while not acks:
            data = await reader.read(65536)
            if not data:
                raise SystemExit("listener closed a connection")
            acks = decoder.feed(data)
        latencies.append(time.perf_counter() - started)
        code = acks[0].split(b"MSA|", 1)[1][:2].decode()
        counts[code] = counts.get(code, 0) + 1
        i += 1
    writer.close()


async def load(port: int, connections: int, seconds: float) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    counts: dict[str, int] = {}
    # Warm-up: every connection open and one message each before the clock starts.
    warm_until = time.perf_counter() + 1.0
    await asyncio.gather(*(monitor(port, 1000 + n, warm_until, [], {}) for n in range(connections)))
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(monitor(port, n, until, latencies, counts) for n in range(connections)))
    return latencies, counts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-max", type=int, default=64)
    args = parser.parse_args()

    parse_per_s = parse_rate()
    with tempfile.TemporaryDirectory(prefix="ketasafe-bench-") as tmp:
        data_dir = Path(tmp)
        proc, port = start_listener(data_dir, args.batch_max)
        try:
            latencies, counts, elapsed = asyncio.run(load(port, args.connections, args.seconds))
        finally:
            proc.terminate()
            proc.wait(30)
        with sqlite3.connect(data_dir / "ketasafe.sqlite3") as conn:
            stored = conn.execute("SELECT COUNT(*) FROM monitoring_inboundmessage "
                                  "WHERE control_id LIKE 'BENCH-%' AND control_id NOT LIKE 'BENCH-10__-%'"
                                  ).fetchone()[0]
            observations = conn.execute("SELECT COUNT(*) FROM monitoring_observation").fetchone()[0]
    acked = counts.get("AA", 0)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    ingest_per_s = acked / elapsed
    print(f"connections={args.connections} seconds={elapsed:.1f} batch_max={args.batch_max} acks={counts} "
          f"stored={stored} observations={observations}")
    if stored != acked:
        print(f"WARNING: {acked} acknowledged but {stored} stored")
    print(f"ingest_msgs_per_s={ingest_per_s:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
          f"hl7_parse_msgs_per_s={parse_per_s:.0f} ratio={ingest_per_s / parse_per_s:.3f}")


if __name__ == "__main__":
    main()
