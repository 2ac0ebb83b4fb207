"""The MLLP listener: a thin asyncio shell around ``ingest.process_batch`` (STYLE §7).

- Each connection is an ``asyncio.Protocol`` with its own ``MllpDecoder``; garbage, truncated
  frames, idle connections (closed after ``idle_timeout``) and dropped connections end that
  connection only. Protocols, not streams: a stream reader/writer pair and a task per
  connection cost more per message than the rest of the listener (benchmarks/README.md).
- Database work never runs on the event loop. Frames go to one writer thread (``BatchWriter``)
  that takes whatever has queued up from all connections (up to ``batch_max``), stores it in
  one transaction (group commit), and only then hands each connection its ACK. A lone
  monitor's frame is stored at once; under load from several monitors the writer waits up
  to ``linger`` (2 ms) for a frame from each busy one (``BatchWriter._take``).
  ``batch_max=1`` turns batching off. The thread keeps one database connection for its life
  (see ``_keep_connection``) and wakes each event loop once per batch.
- ACKs leave in the order the frames arrived: one FIFO queue, batches answered in order.
  A connection with ``MAX_IN_FLIGHT`` frames unanswered, or whose ACKs are not being read
  (the transport's write buffer is full), is not read until that clears, so one flooding
  sender cannot fill the memory.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .hl7.mllp import MllpDecoder, frame

log = logging.getLogger("ketasafe.monitoring.listener")

DEFAULT_IDLE_TIMEOUT = 300.0  # a monitor sends about once a minute; 5 quiet minutes = gone
DEFAULT_BATCH_MAX = 64
MAX_IN_FLIGHT = 64  # unanswered frames per connection before it stops being read
DEFAULT_LINGER = 0.002  # most a batch waits for the frames of other busy monitors
BUSY_WITHIN = 1.0  # a monitor that sent a frame this recently is "sending right now"

Answer = Callable[[bytes | None], None]  # runs on the connection's event loop; None = no ACK
_Item = tuple[bytes, Answer, asyncio.AbstractEventLoop]


class BatchWriter:
    """One thread that owns the database work of the listener. Every submitted frame is
    answered (``None`` if ``process`` failed without ACKs), on the submitter's event loop."""

    def __init__(self, process: Callable[[Sequence[bytes]], list[bytes]], batch_max: int = DEFAULT_BATCH_MAX,
                 linger: float = DEFAULT_LINGER) -> None:
        self.process = process
        self.batch_max = max(1, batch_max)
        self.linger = linger
        # How many monitors are sending right now (set by the server).
        self.busy_senders: Callable[[], int] = lambda: 1
        self._last_sources = 0  # monitors (answer callbacks) in the previous batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mllp-writer", daemon=True)
        self.batches = 0
        self.messages = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def submit_nowait(self, raw: bytes, answer: Answer, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put((raw, answer, loop))

    async def submit(self, raw: bytes) -> bytes:
        """The ACK of one frame (for callers that are not connections)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()

        def answer(ack: bytes | None) -> None:
            if not future.done():
                future.set_result(ack) if ack is not None else future.set_exception(RuntimeError("no ACK"))

        self.submit_nowait(raw, answer, loop)
        return await future

    def _take(self, first: _Item) -> tuple[list[_Item], bool]:
        """The next batch, and whether the writer was told to stop.

        Everything queued is taken. Then, if the previous batch came from several monitors, the
        writer waits up to ``linger`` until it has a frame from each monitor that is busy (sent
        a frame within ``BUSY_WITHIN``): a commit costs about as much as ten messages, and
        batches of 20 instead of 10 gave +25 % when measured. A lone monitor, even one that
        alternates between connections, is never kept waiting (its batches have one source)."""
        batch = [first]
        deadline = time.monotonic() + self.linger
        expected = 0
        while len(batch) < self.batch_max:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                if not expected:
                    expected = self._expected()
                remaining = deadline - time.monotonic()
                if len(batch) >= expected or remaining <= 0:
                    break
                try:
                    more = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if more is None:
                return batch, True
            batch.append(more)
        self._last_sources = len({answer for _raw, answer, _loop in batch})
        return batch, False

    def _expected(self) -> int:
        if self._last_sources <= 1:
            return 1
        try:
            return min(self.batch_max, self.busy_senders())
        except Exception:  # noqa: BLE001 - a guess only: never let it stop the writer
            log.exception("could not count the monitors sending")
            return 1

    def _run(self) -> None:
        from django.db import connection

        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch, stop = self._take(item)
                try:
                    _keep_connection(connection)
                    acks = self.process([raw for raw, _a, _l in batch])
                except Exception:  # noqa: BLE001 - the thread must live on; the frames get no ACK
                    log.exception("ingest raised")
                    acks = []
                self.batches += 1
                self.messages += len(batch)
                # One wake-up of each event loop per batch, not one per message (each costs a
                # write to the loop's self-pipe).
                by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Answer, bytes | None]]] = {}
                for index, (_raw, answer, loop) in enumerate(batch):
                    by_loop.setdefault(loop, []).append((answer, acks[index] if index < len(acks) else None))
                for loop, answers in by_loop.items():
                    try:
                        loop.call_soon_threadsafe(_answer_all, answers)
                    except RuntimeError:  # that loop is closed: its connections are gone
                        log.info("event loop closed before %d ACKs could be sent", len(answers))
                if stop:
                    return
        finally:
            connection.close()


def _keep_connection(connection: Any) -> None:
    """The writer keeps its database connection for its whole life instead of Django's
    per-request CONN_MAX_AGE: reopening it per batch cost a connect, the pragmas and, on SQLite
    in WAL mode, a checkpoint at every close (the largest single cost per batch when measured).
    A connection that saw errors and no longer answers is replaced, as Django would."""
    if connection.connection is None:
        return
    if connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()
    elif connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
        connection.close()


def _answer_all(answers: list[tuple[Answer, bytes | None]]) -> None:
    for answer, ack in answers:
        try:
            answer(ack)
        except Exception:  # noqa: BLE001 - one connection's failure never stops the others
            log.exception("sending an ACK failed")


class MllpConnection(asyncio.Protocol):
    """One monitor's connection: frames in, ACKs out in the same order."""

    def __init__(self, server: MllpServer) -> None:
        self.server = server
        self.decoder = MllpDecoder(server.max_frame_bytes) if server.max_frame_bytes else MllpDecoder()
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.in_flight = 0
        self.paused = False  # too many frames unanswered
        self.write_paused = False  # the monitor does not read its ACKs (transport buffer full)
        self.last_active = 0.0
        self.last_frame = 0.0  # time.monotonic() of the last complete frame
        self._closing: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.last_active = self.server.loop.time()
        self.server.connections += 1
        self.server.open.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.server.loop.time()
        frames = self.decoder.feed(data)
        if frames:
            self.last_frame = time.monotonic()
        for raw in frames:
            self.in_flight += 1
            self.server.writer.submit_nowait(raw, self.answer, self.server.loop)
        if self.decoder.problems_pending:
            for problem in self.decoder.take_problems():
                log.warning("MLLP %s from %s: %d bytes dropped", problem.kind, self.peer, problem.size)
        if self.in_flight >= MAX_IN_FLIGHT and not self.paused and self.transport is not None:
            self.paused = True
            self._update_reading()

    def _update_reading(self) -> None:
        """Read only while the monitor has few frames unanswered and takes its ACKs."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.paused or self.write_paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def answer(self, ack: bytes | None) -> None:
        self.in_flight -= 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # the monitor went away while we were storing; it sends again
        if ack is None:
            log.error("no ACK for a frame from %s: closing the connection so that it sends again", self.peer)
            transport.close()
            return
        transport.write(frame(ack))
        self.last_active = self.server.loop.time()
        if self.paused and self.in_flight < MAX_IN_FLIGHT // 2:
            self.paused = False
            self._update_reading()

    def eof_received(self) -> bool:
        # Half-closed by the monitor: ACKs still owed are sent before the connection closes.
        if self.in_flight and self.transport is not None:
            self._closing = self.server.loop.create_task(self._close_when_answered())
            return True
        return False

    async def _close_when_answered(self) -> None:
        deadline = self.server.loop.time() + self.server.idle_timeout
        while (self.in_flight and self.transport is not None and not self.transport.is_closing()
               and self.server.loop.time() < deadline):
            await asyncio.sleep(0.01)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("connection %s dropped: %s", self.peer, exc)
        for problem in self.decoder.close():
            log.warning("MLLP %s from %s at close: %d bytes dropped", problem.kind, self.peer, problem.size)
        self.server.open.discard(self)
        self.transport = None

    def close_if_idle(self, now: float, idle_timeout: float) -> None:
        if self.transport is not None and not self.in_flight and now - self.last_active > idle_timeout:
            log.info("closing idle connection %s", self.peer)
            self.transport.close()


class MllpServer:
    def __init__(self, writer: BatchWriter, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 max_frame_bytes: int | None = None) -> None:
        self.writer = writer
        self.idle_timeout = idle_timeout
        self.max_frame_bytes = max_frame_bytes
        self.connections = 0
        self.open: set[MllpConnection] = set()
        self.server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(lambda: MllpConnection(self), host, port)
        self.writer.busy_senders = self.busy_senders
        self._sweeper = self.loop.create_task(self._close_idle())
        sockname = self.server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    def busy_senders(self) -> int:
        """Connections that sent a frame within ``BUSY_WITHIN`` seconds. Called from the writer
        thread: ``list(self.open)`` copies the set in one step under CPython's GIL, and the
        values read are floats the event loop writes; an error here only costs the wait
        (``BatchWriter._expected``)."""
        horizon = time.monotonic() - BUSY_WITHIN
        return sum(1 for conn in list(self.open) if conn.last_frame > horizon)

    async def _close_idle(self) -> None:
        # One sweep for all connections (not a timer per connection reset at every frame).
        while True:
            await asyncio.sleep(max(0.05, min(self.idle_timeout / 5, 5.0)))
            now = self.loop.time()
            for conn in list(self.open):
                conn.close_if_idle(now, self.idle_timeout)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
            for conn in list(self.open):
                if conn.transport is not None:
                    conn.transport.close()
            await self.server.wait_closed()


async def watch_loop(interval: float, run: Callable[[], Any]) -> None:
    """Run the periodic alert work (escalation, stale feeds) in a thread every ``interval`` s."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(run)
        except Exception:  # noqa: BLE001 - the watch must keep going
            log.exception("monitor watch failed")


def run_watch_in_thread() -> None:
    from django.db import close_old_connections, connection

    from .alerts import run_watch

    close_old_connections()
    try:
        run_watch()
    finally:
        connection.close()
