"""MLLP framing: ``0x0B`` + message + ``0x1C 0x0D`` (interop-and-anchors.md §3.3).

Pure and incremental: the asyncio listener feeds whatever bytes ``read()`` returned and gets back
the complete messages. The decoder never raises on any input (issue 5: garbage, truncated frames
and dropped connections never stop the listener); what it had to throw away is reported as
``FramingProblem`` values for the log, through ``take_problems()``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

START_BLOCK = b"\x0b"  # <SB>, VT
END_BLOCK = b"\x1c"  # <EB>, FS
CARRIAGE_RETURN = b"\x0d"

# Monitors send a few kB per message (one OBR and a handful of OBX); 1 MiB is far above any
# legitimate ORU and bounds the memory one misbehaving connection can hold.
DEFAULT_MAX_FRAME_BYTES = 1 << 20

# Bytes between frames that are not worth a report: the CR after <EB> when it arrives in a later
# read than the <EB> itself, stray line ends and keep-alive whitespace.
_QUIET_BETWEEN_FRAMES = b"\r\n\t \x1c"

# Most problems a decoder keeps for take_problems(); older ones are dropped (counted in totals).
_MAX_KEPT_PROBLEMS = 100

ProblemKind = Literal["garbage", "oversize", "truncated", "empty"]


@dataclass(frozen=True)
class FramingProblem:
    """Bytes the decoder discarded. ``size`` is the number of bytes dropped.

    - ``garbage``: bytes outside a frame (before a start block).
    - ``oversize``: a frame passed ``max_frame_bytes``; the partial frame was dropped and the rest
      of it is skipped up to the next start block.
    - ``truncated``: a frame was cut short by a new start block, or by ``close()``.
    - ``empty``: a frame with nothing in it (some senders use it as a keep-alive).
    """

    kind: ProblemKind
    size: int


def frame(msg: bytes) -> bytes:
    """Wrap one message in MLLP start/end blocks.

    Raises ``ValueError`` if the message itself contains a block character: it would corrupt the
    stream, and HL7 text never contains VT or FS (a programming error, not an input error).
    """
    if START_BLOCK in msg or END_BLOCK in msg:
        raise ValueError("an HL7 message must not contain MLLP block characters 0x0B/0x1C")
    return START_BLOCK + msg + END_BLOCK + CARRIAGE_RETURN


class MllpDecoder:
    """Incremental MLLP decoder for one connection.

    A frame ends at ``0x1C``; the ``0x0D`` that should follow is consumed as inter-frame bytes,
    so a sender that omits it still works. A start block inside an open frame means the previous
    frame was cut off: it is reported as truncated and the new frame starts. Each byte is scanned
    once (no rescanning of the buffer), so a large frame fed in small pieces stays linear.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversize frame: drop everything up to the next <SB>
        self._problems: deque[FramingProblem] = deque(maxlen=_MAX_KEPT_PROBLEMS)
        self.totals: dict[ProblemKind, int] = {
            "garbage": 0,
            "oversize": 0,
            "truncated": 0,
            "empty": 0,
        }

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame currently held (0 between frames)."""
        return len(self._buf)

    @property
    def problems_pending(self) -> bool:
        """Whether ``take_problems`` has anything (a cheap check for the hot path)."""
        return bool(self._problems)

    def take_problems(self) -> list[FramingProblem]:
        """Return and forget the problems seen since the last call (at most the last 100)."""
        problems = list(self._problems)
        self._problems.clear()
        return problems

    def close(self) -> list[FramingProblem]:
        """The connection ended: an open frame is reported as truncated. Returns all problems."""
        if self._in_frame and self._buf:
            self._report("truncated", len(self._buf))
        self._reset_frame()
        self._skipping = False
        return self.take_problems()

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data`` and return the messages completed by it, in order (without framing)."""
        data = bytes(data)
        messages: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._skipping:
                start = data.find(START_BLOCK, pos)
                if start == -1:
                    return messages
                self._skipping = False
                pos = start
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                stop = end if start == -1 else start
                if data[pos:stop].strip(_QUIET_BETWEEN_FRAMES):
                    self._report("garbage", stop - pos)
                if start == -1:
                    return messages
                self._in_frame = True
                pos = start + 1
                continue
            eb = data.find(END_BLOCK, pos)
            sb = data.find(START_BLOCK, pos)
            if sb != -1 and (eb == -1 or sb < eb):
                # A new frame starts before this one ended: the sender gave up on it.
                if self._append(data[pos:sb]) and self._buf:
                    self._report("truncated", len(self._buf))
                self._reset_frame()
                self._in_frame = True
                self._skipping = False
                pos = sb + 1
                continue
            if eb == -1:
                self._append(data[pos:])
                return messages
            if self._append(data[pos:eb]):
                if self._buf:
                    messages.append(bytes(self._buf))
                else:
                    self._report("empty", 0)
                self._reset_frame()
            pos = eb + 1
        return messages

    def _append(self, chunk: bytes) -> bool:
        """Add to the open frame; on overflow drop it and start skipping. False if dropped."""
        if len(self._buf) + len(chunk) > self.max_frame_bytes:
            self._report("oversize", len(self._buf) + len(chunk))
            self._reset_frame()
            self._skipping = True
            return False
        self._buf += chunk
        return True

    def _reset_frame(self) -> None:
        self._buf = bytearray()
        self._in_frame = False

    def _report(self, kind: ProblemKind, size: int) -> None:
        self.totals[kind] += 1
        self._problems.append(FramingProblem(kind, size))
