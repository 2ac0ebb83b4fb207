"""The MLLP listener over real TCP on 127.0.0.1 (ephemeral port), in this process: garbage,
truncated frames, idle and dropped connections never stop it; ACKs come after the commit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ketasafe.monitoring.hl7.mllp import MllpDecoder, frame
from ketasafe.monitoring.ingest import process_batch
from ketasafe.monitoring.listener import BatchWriter, MllpServer
from ketasafe.monitoring.models import InboundMessage, Observation

from .helpers import ack_code, ack_fields, oru, sample

pytestmark = pytest.mark.django_db(transaction=True)


class RunningListener:
    def __init__(self, idle_timeout: float = 30.0, batch_max: int = 64) -> None:
        self.loop = asyncio.new_event_loop()
        self.writer = BatchWriter(process_batch, batch_max=batch_max)
        self.server = MllpServer(self.writer, idle_timeout=idle_timeout)
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            _host, self.port = self.loop.run_until_complete(self.server.start("127.0.0.1", 0))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.writer.start()
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.writer.stop()


@pytest.fixture
def listener() -> Iterator[RunningListener]:
    running = RunningListener(idle_timeout=1.0)
    yield running
    running.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_acks(sock: socket.socket, count: int = 1) -> list[bytes]:
    decoder = MllpDecoder()
    acks: list[bytes] = []
    while len(acks) < count:
        data = sock.recv(65536)
        if not data:
            break
        acks += decoder.feed(data)
    return acks


def send_and_ack(port: int, raw: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(frame(raw))
        return read_acks(sock)[0]


def test_a_message_over_tcp_is_stored_then_acknowledged(listener: RunningListener) -> None:
    ack = send_and_ack(listener.port, sample("ipf_pcd01_bp_request.hl7"))
    assert ack_fields(ack)[1:3] == ["AA", "MSGID1234"]
    assert InboundMessage.objects.count() == 1  # visible to another connection: committed


def test_garbage_truncated_frames_idle_and_dropped_connections_do_not_stop_it(listener: RunningListener) -> None:
    port = listener.port
    idle = connect(port)  # says nothing; closed by the listener after the idle timeout
    with connect(port) as sock:  # garbage outside any frame, then a valid message on the same line
        sock.sendall(b"\x00\xff not hl7 at all \r\n")
        sock.sendall(frame(oru("T1")))
        assert ack_code(read_acks(sock)[0]) == "AA"
    with connect(port) as sock:  # a frame cut short by the next one: the second still gets its ACK
        sock.sendall(b"\x0bMSH|^~\\&|HALF")
        sock.sendall(frame(oru("T2")))
        assert ack_code(read_acks(sock)[0]) == "AA"
    with connect(port) as sock:  # a truncated frame, then the sender hangs up
        sock.sendall(b"\x0b" + oru("LOST")[:100])
    with connect(port) as sock:  # a framed non-HL7 message gets AR
        sock.sendall(frame(b"hello"))
        assert ack_code(read_acks(sock)[0]) == "AR"
    with connect(port) as sock:  # reset by the peer mid-stream
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"\x0b" + oru("RST")[:50])
    time.sleep(1.5)
    assert idle.recv(10) == b""  # the idle connection was closed
    idle.close()
    assert ack_code(send_and_ack(port, oru("T3"))) == "AA"
    assert sorted(InboundMessage.objects.values_list("control_id", flat=True)) == ["T1", "T2", "T3"]


def test_many_connections_at_once_each_get_their_own_acks(listener: RunningListener) -> None:
    results: dict[str, str] = {}

    def chair(n: int) -> None:
        with connect(listener.port) as sock:
            for i in range(5):
                control_id = f"C{n}-{i}"
                sock.sendall(frame(oru(control_id, bed=f"B{n}")))
                fields = ack_fields(read_acks(sock)[0])
                results[control_id] = f"{fields[1]}:{fields[2]}"

    threads = [threading.Thread(target=chair, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 60
    assert all(value == f"AA:{key}" for key, value in results.items())
    assert InboundMessage.objects.count() == 60
    assert Observation.objects.count() == 60 * 7
    assert listener.writer.messages == 60


def test_a_repeat_over_tcp_is_acknowledged_and_stored_once(listener: RunningListener) -> None:
    with connect(listener.port) as sock:
        sock.sendall(frame(oru("R1")) + frame(oru("R1")))
        acks = read_acks(sock, 2)
    assert [ack_fields(a)[1:3] for a in acks] == [["AA", "R1"], ["AA", "R1"]]
    assert InboundMessage.objects.count() == 1


def test_a_sender_pipelining_more_frames_than_the_in_flight_cap_gets_every_ack_in_order(
        listener: RunningListener) -> None:
    from ketasafe.monitoring.listener import MAX_IN_FLIGHT

    count = MAX_IN_FLIGHT * 3
    control_ids = [f"P{i}" for i in range(count)]
    with connect(listener.port) as sock:
        sock.sendall(b"".join(frame(oru(c)) for c in control_ids))  # reading pauses and resumes
        acks = read_acks(sock, count)
    assert [ack_fields(a)[1:3] for a in acks] == [["AA", c] for c in control_ids]
    assert InboundMessage.objects.count() == count


def test_acks_owed_are_sent_after_the_monitor_half_closes(listener: RunningListener) -> None:
    with connect(listener.port) as sock:
        sock.sendall(frame(oru("H1")) + frame(oru("H2")) + frame(oru("H3")))
        sock.shutdown(socket.SHUT_WR)  # done sending, still reading
        acks = read_acks(sock, 3)
        assert sock.recv(10) == b""  # then the listener closes
    assert [ack_fields(a)[1:3] for a in acks] == [["AA", "H1"], ["AA", "H2"], ["AA", "H3"]]


def test_a_monitor_that_never_reads_its_acks_is_no_longer_read(listener: RunningListener) -> None:
    # Its ACKs pile up in the kernel, then in the transport: the listener stops reading it
    # (asyncio's write flow control) instead of buffering ACKs without bound.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", listener.port))
    sock.settimeout(0.5)
    one = b"".join(frame(oru(f"N{i}")) for i in range(200))
    try:
        for _round in range(400):  # up to 80,000 frames; sending blocks once nothing is read
            sock.sendall(one)
    except TimeoutError:
        pass
    time.sleep(1.0)
    conn = next(iter(listener.server.open))
    assert conn.write_paused
    assert conn.transport is not None and conn.transport.get_write_buffer_size() < 1 << 20
    processed = listener.writer.messages
    time.sleep(1.0)
    assert listener.writer.messages == processed  # nothing more is read while ACKs are not taken
    sock.close()


def _collecting_writer(busy: object, linger: float
                       ) -> tuple[BatchWriter, list[list[bytes]], asyncio.AbstractEventLoop]:
    batches: list[list[bytes]] = []

    def process(raws):  # type: ignore[no-untyped-def]
        batches.append(list(raws))
        return [b"ACK" for _ in raws]

    writer = BatchWriter(process, linger=linger)
    writer.busy_senders = busy  # type: ignore[assignment]
    return writer, batches, asyncio.new_event_loop()


def _monitor() -> object:
    return lambda ack: None  # each monitor's connection answers through its own callable


def _wait_for(batches: list[list[bytes]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(batches) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_batch_waits_briefly_for_the_other_monitors_that_are_sending() -> None:
    writer, batches, loop = _collecting_writer(lambda: 3, linger=5.0)
    for raw in (b"a", b"b"):  # a first batch from two monitors: several are busy
        writer.submit_nowait(raw, _monitor(), loop)  # type: ignore[arg-type]
    writer.start()
    try:
        _wait_for(batches, 1)
        for raw in (b"1", b"2", b"3"):
            writer.submit_nowait(raw, _monitor(), loop)  # type: ignore[arg-type]
            time.sleep(0.05)  # the others arrive a little later, as ACKed monitors answer
        _wait_for(batches, 2)
    finally:
        writer.stop()
        loop.close()
    assert batches == [[b"a", b"b"], [b"1", b"2", b"3"]]  # one commit for the three


def test_a_lone_monitor_is_not_kept_waiting_even_if_others_look_busy() -> None:
    writer, batches, loop = _collecting_writer(lambda: 5, linger=5.0)
    lone = _monitor()
    writer.start()
    try:
        writer.submit_nowait(b"1", lone, loop)  # type: ignore[arg-type]
        time.sleep(0.3)
        assert batches == [[b"1"]]  # stored at once, not after the 5 s linger
        writer.submit_nowait(b"2", lone, loop)  # type: ignore[arg-type]
        time.sleep(0.3)
    finally:
        writer.stop()
        loop.close()
    assert batches == [[b"1"], [b"2"]]


def test_a_failing_count_of_busy_monitors_does_not_stop_the_writer() -> None:
    def broken() -> int:
        raise RuntimeError("count failed")

    writer, batches, loop = _collecting_writer(broken, linger=5.0)
    for raw in (b"a", b"b"):
        writer.submit_nowait(raw, _monitor(), loop)  # type: ignore[arg-type]
    writer.start()
    try:
        _wait_for(batches, 1)
        writer.submit_nowait(b"1", _monitor(), loop)  # type: ignore[arg-type]
        _wait_for(batches, 2)
        assert writer._thread.is_alive()
    finally:
        writer.stop()
        loop.close()
    assert batches == [[b"a", b"b"], [b"1"]]
