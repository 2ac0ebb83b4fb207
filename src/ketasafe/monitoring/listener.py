"""The MLLP listener: a thin asyncio shell around ``ingest.process_batch`` (STYLE §7).

- Each connection is its own task with its own ``MllpDecoder``; garbage, truncated frames, idle
  connections (closed after ``idle_timeout``) and dropped connections end that task only.
- Database work never runs on the event loop. Frames go to one writer thread (``BatchWriter``)
  that takes whatever has queued up from all connections (up to ``batch_max``), stores it in
  one transaction (group commit), and only then hands each connection its ACK. With one
  message queued the batch is that message: batching adds no latency, it only appears under
  load. ``batch_max=1`` turns it off. The thread keeps one database connection for its life
  (see ``_keep_connection``) and wakes each event loop once per batch.
- A connection sends the ACK of a frame before reading the next frame's result, so ACKs leave in
  the order the frames arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .hl7.mllp import MllpDecoder, frame

log = logging.getLogger("ketasafe.monitoring.listener")

DEFAULT_IDLE_TIMEOUT = 300.0  # a monitor sends about once a minute; 5 quiet minutes = gone
DEFAULT_BATCH_MAX = 64
READ_SIZE = 64 * 1024


class BatchWriter:
    """One thread that owns the database work of the listener. ``submit`` is awaited by
    connection tasks; the thread answers every item, even when ``process`` fails."""

    def __init__(self, process: Callable[[Sequence[bytes]], list[bytes]], batch_max: int = DEFAULT_BATCH_MAX) -> None:
        self.process = process
        self.batch_max = max(1, batch_max)
        self._queue: queue.SimpleQueue[tuple[bytes, asyncio.Future[bytes], asyncio.AbstractEventLoop] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mllp-writer", daemon=True)
        self.batches = 0
        self.messages = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    async def submit(self, raw: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._queue.put((raw, future, loop))
        return await future

    def _run(self) -> None:
        from django.db import connection

        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < self.batch_max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                _keep_connection(connection)
                try:
                    acks = self.process([raw for raw, _f, _l in batch])
                except Exception:  # noqa: BLE001 - process_batch never raises; belt and braces
                    log.exception("ingest raised")
                    acks = []
                self.batches += 1
                self.messages += len(batch)
                # One wake-up of each event loop per batch, not one per message (each costs a
                # write to the loop's self-pipe).
                by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bytes], bytes | None]]] = {}
                for index, (_raw, future, loop) in enumerate(batch):
                    by_loop.setdefault(loop, []).append((future, acks[index] if index < len(acks) else None))
                for loop, settled in by_loop.items():
                    loop.call_soon_threadsafe(_settle_all, settled)
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


def _settle_all(settled: list[tuple[asyncio.Future[bytes], bytes | None]]) -> None:
    for future, ack in settled:
        _settle(future, ack)


def _settle(future: asyncio.Future[bytes], ack: bytes | None) -> None:
    if future.done():
        return  # the connection went away while we were storing
    if ack is None:
        future.set_exception(RuntimeError("no ACK"))
    else:
        future.set_result(ack)


class MllpServer:
    def __init__(self, writer: BatchWriter, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 max_frame_bytes: int | None = None) -> None:
        self.writer = writer
        self.idle_timeout = idle_timeout
        self.max_frame_bytes = max_frame_bytes
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.server = await asyncio.start_server(self.handle, host, port, limit=READ_SIZE)
        sockname = self.server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.connections += 1
        decoder = MllpDecoder(self.max_frame_bytes) if self.max_frame_bytes else MllpDecoder()
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout)
                except TimeoutError:
                    log.info("closing idle connection %s", peer)
                    break
                if not data:
                    break
                for raw in decoder.feed(data):
                    ack = await self.writer.submit(raw)
                    writer.write(frame(ack))
                    await writer.drain()
                for problem in decoder.take_problems():
                    log.warning("MLLP %s from %s: %d bytes dropped", problem.kind, peer, problem.size)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            log.info("connection %s dropped: %s", peer, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one connection's failure never stops the listener
            log.exception("connection %s failed", peer)
        finally:
            for problem in decoder.close():
                log.warning("MLLP %s from %s at close: %d bytes dropped", problem.kind, peer, problem.size)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
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
