"""How fast could ingest be? The ceilings around `ingest.py`, measured with its own client.

`ingest.py` reports durable acknowledged messages per second through the real listener. This
script runs the same 20 monitor connections against the same listener shell (`MllpServer` and
`BatchWriter`, group commit, ACK after commit) with less and less work behind it, so that what
the work costs, and what no implementation of it can beat on this machine, can be read:

- `ack`:   ACK every frame at once, nothing stored (the shell, the client and the sockets);
- `raw`:   store each frame as one row, durably (SQLite WAL, synchronous=FULL, one commit a batch);
- `rows`:  store the rows the listener stores for the benchmark message (an InboundMessage,
           7 Observations, an audit entry and the chain-head update) into the real migrated
           schema, from rows built in advance: no parsing, code mapping, lookups or hashing;
- `listener`: the real `ketasafe mllp_listen`, as `ingest.py` runs it.

Run: .venv/bin/python benchmarks/ingest_ceiling.py [--seconds 8]
Last line: one `<mode>_msgs_per_s=` and `<mode>_ratio=` per mode, and `hl7_parse_msgs_per_s`
(ratios as issue 5 defines them: durable acknowledged msgs/s over bare `hl7.parse` msgs/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (the client, the message and the hl7.parse reference)

ACK = b"MSH|^~\\&|KetaSafe||||20260301101500||ACK^R01^ACK|1|P|2.6\rMSA|AA|1\r"
NOW = "2026-03-01 10:15:00.000000"
MESSAGE_SQL = ("INSERT INTO monitoring_inboundmessage (sender, control_id, received_at, raw, bed, "
               "patient_identifier) VALUES")
AUDIT_SQL = ("INSERT INTO audit_auditentry (at, actor, action, object_type, object_id, changes, detail, "
             "client_address, prev_hash, hash, actor_user_id, patient_id) VALUES")
OBSERVATION_SQL = (
    "INSERT INTO monitoring_observation (kind, loinc, value, unit, observed_at, source, raw_code, "
    "raw_code_system, raw_value, raw_unit, flags, created_at, message_id, patient_id, recorded_by_id, "
    "session_id, device_id, raw_code_text, raw_value_type, sub_id, unmapped) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def store_raw(conn: sqlite3.Connection, raws: Sequence[bytes]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO frame (raw) VALUES (?)", [(raw.decode(),) for raw in raws])
    conn.execute("COMMIT")


def store_rows(conn: sqlite3.Connection, raws: Sequence[bytes]) -> None:
    """The listener's rows for `raws`, from constants (MSH-10 cut out for the unique key)."""
    conn.execute("BEGIN IMMEDIATE")
    values = []
    for raw in raws:
        fields = raw.split(b"\r", 1)[0].split(b"|")
        values += [fields[2].decode(), fields[9].decode(), NOW, raw.decode(), "KETA^CHAIR^1", "MRN0042"]
    marks = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(raws))  # placeholders only, never values
    sql = f"{MESSAGE_SQL} {marks} RETURNING id"
    ids = [row[0] for row in conn.execute(sql, values)]
    conn.executemany(OBSERVATION_SQL, [
        ("systolic" if k else "", "8480-6" if k else "", "132" if k else None, "mm[Hg]", NOW, "device",
         "150021", "MDC", "132", "mm[Hg]", "[]", NOW, message_id, None, None, None, "0012A3FFFE000001",
         "MDC_PRESS_BLD_NONINV_SYS", "NM" if k else "", f"1.1.1.{k}", False)
        for message_id in ids for k in range(7)])
    head = conn.execute("SELECT last_hash FROM audit_chainhead WHERE id = 1").fetchone()[0]
    audit = []
    for message_id in ids:
        audit += [NOW, "mllp-listener", "create", "monitoring.InboundMessage", str(message_id),
                  '{"after": {"observations": 7, "assigned": "unassigned"}}', "", None, head, "0" * 64, None, None]
    marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(ids))
    sql = f"{AUDIT_SQL} {marks} RETURNING id"
    last = list(conn.execute(sql, audit))[-1][0]
    conn.execute("UPDATE audit_chainhead SET last_entry_id = ?, last_hash = ? WHERE id = 1", (last, "0" * 64))
    conn.execute("COMMIT")


def serve(mode: str, database: Path) -> None:
    """The listener shell with `mode`'s work behind it (runs in its own process)."""
    from ketasafe.monitoring import listener

    process: Callable[[Sequence[bytes]], list[bytes]]
    if mode == "ack":
        def process(raws: Sequence[bytes]) -> list[bytes]:
            return [ACK] * len(raws)
    else:
        conn = connect(database)
        store = store_raw if mode == "raw" else store_rows

        def process(raws: Sequence[bytes]) -> list[bytes]:
            store(conn, raws)
            return [ACK] * len(raws)

    listener._keep_connection = lambda connection: None  # no Django connection in this process

    async def run() -> None:
        writer = listener.BatchWriter(process)
        writer.start()
        host, port = await listener.MllpServer(writer).start("127.0.0.1", 0)
        print(f"MLLP listener on {host}:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def prepare(mode: str, data_dir: Path) -> Path:
    database = data_dir / "ketasafe.sqlite3"
    if mode == "raw":
        with connect(database) as conn:
            conn.execute("CREATE TABLE frame (id INTEGER PRIMARY KEY, raw TEXT NOT NULL)")
    elif mode == "rows":
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"KETASAFE_DATA_DIR": str(data_dir)}
        subprocess.run([sys.executable, "-m", "ketasafe.cli", "migrate", "-v", "0"], env=env, check=True)
        with connect(database) as conn:
            conn.execute("INSERT INTO audit_chainhead (id, last_entry_id, last_hash) VALUES (1, NULL, '')")
    return database


def measure(mode: str, seconds: float) -> float:
    with tempfile.TemporaryDirectory(prefix=f"ketasafe-ceiling-{mode}-") as tmp:
        if mode == "listener":
            proc, port = ingest.start_listener(Path(tmp), batch_max=64)
        else:
            database = prepare(mode, Path(tmp))
            proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--database", str(database)],
                                    stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            port = int(proc.stdout.readline().rsplit(":", 1)[1])
        try:
            _latencies, counts, elapsed = asyncio.run(ingest.load(port, 20, seconds))
        finally:
            proc.terminate()
            proc.wait(30)
    return counts.get("AA", 0) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--serve", choices=["ack", "raw", "rows"])
    parser.add_argument("--database", type=Path)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database)
        return
    parse_per_s = ingest.parse_rate()
    figures = []
    for mode in ("ack", "raw", "rows", "listener"):
        per_s = measure(mode, args.seconds)
        print(f"{mode:9} {per_s:8.0f} msgs/s  ratio {per_s / parse_per_s:5.2f}", flush=True)
        figures.append(f"{mode}_msgs_per_s={per_s:.0f} {mode}_ratio={per_s / parse_per_s:.2f}")
    print(" ".join(figures), f"hl7_parse_msgs_per_s={parse_per_s:.0f}")


if __name__ == "__main__":
    main()
