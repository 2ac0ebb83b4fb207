"""MLLP framing: 0x0B + message + 0x1C 0x0D, decoded incrementally and never raising."""

from __future__ import annotations

import pytest

from ketasafe.monitoring.hl7.mllp import FramingProblem, MllpDecoder, frame

MSG_A = b"MSH|^~\\&|A||||20250101120000||ORU^R01|1|P|2.6\rPID|||42\r"
MSG_B = b"MSH|^~\\&|B||||20250101120000||ORU^R01|2|P|2.6\rPID|||43\r"


def test_frame_wraps_in_start_and_end_blocks() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_frame_refuses_block_characters_inside_the_message() -> None:
    with pytest.raises(ValueError):
        frame(b"MSH|\x1c")


def test_one_frame_in_one_feed() -> None:
    dec = MllpDecoder()
    assert dec.feed(frame(MSG_A)) == [MSG_A]
    assert dec.take_problems() == []
    assert dec.buffered == 0


def test_a_frame_split_at_every_byte_is_reassembled() -> None:
    dec = MllpDecoder()
    data = frame(MSG_A)
    out: list[bytes] = []
    for i in range(len(data)):
        out += dec.feed(data[i : i + 1])
    assert out == [MSG_A]
    assert dec.take_problems() == []


def test_split_between_end_block_and_cr_is_quiet() -> None:
    dec = MllpDecoder()
    data = frame(MSG_A)
    assert dec.feed(data[:-1]) == [MSG_A]
    assert dec.feed(data[-1:] + frame(MSG_B)) == [MSG_B]
    assert dec.take_problems() == []


def test_several_frames_in_one_feed_come_out_in_order() -> None:
    dec = MllpDecoder()
    assert dec.feed(frame(MSG_A) + frame(MSG_B) + frame(MSG_A)) == [MSG_A, MSG_B, MSG_A]


def test_garbage_before_a_start_block_is_dropped_and_reported() -> None:
    dec = MllpDecoder()
    assert dec.feed(b"GET / HTTP/1.1\r\n\r\n" + frame(MSG_A)) == [MSG_A]
    assert dec.take_problems() == [FramingProblem("garbage", 18)]
    assert dec.take_problems() == []  # drained


def test_end_block_without_cr_still_ends_the_frame() -> None:
    dec = MllpDecoder()
    assert dec.feed(b"\x0b" + MSG_A + b"\x1c" + b"\x0b" + MSG_B + b"\x1c") == [MSG_A, MSG_B]
    assert dec.take_problems() == []


def test_a_new_start_block_inside_a_frame_reports_the_truncated_frame() -> None:
    dec = MllpDecoder()
    assert dec.feed(b"\x0bMSH|half" + frame(MSG_B)) == [MSG_B]
    assert dec.take_problems() == [FramingProblem("truncated", len(b"MSH|half"))]


def test_oversize_frame_is_dropped_and_the_next_frame_still_arrives() -> None:
    dec = MllpDecoder(max_frame_bytes=100)
    big = b"\x0b" + b"X" * 150
    assert dec.feed(big) == []
    assert dec.buffered == 0
    assert dec.feed(b"Y" * 500 + b"\x1c\x0d") == []  # rest of the oversize frame: skipped
    assert dec.feed(frame(MSG_A)) == [MSG_A]
    problems = dec.take_problems()
    assert [p.kind for p in problems] == ["oversize"]
    assert dec.totals["oversize"] == 1


def test_frame_of_exactly_the_maximum_size_is_accepted() -> None:
    dec = MllpDecoder(max_frame_bytes=len(MSG_A))
    assert dec.feed(frame(MSG_A)) == [MSG_A]
    small = MllpDecoder(max_frame_bytes=len(MSG_A) - 1)
    assert small.feed(frame(MSG_A)) == []
    assert [p.kind for p in small.take_problems()] == ["oversize"]


def test_oversize_built_up_over_many_feeds_is_caught() -> None:
    dec = MllpDecoder(max_frame_bytes=1000)
    dec.feed(b"\x0b")
    for _ in range(20):
        dec.feed(b"Z" * 100)
    assert dec.buffered <= 1000
    assert dec.totals["oversize"] == 1


def test_empty_frame_is_reported_not_emitted() -> None:
    dec = MllpDecoder()
    assert dec.feed(b"\x0b\x1c\x0d") == []
    assert dec.take_problems() == [FramingProblem("empty", 0)]


def test_close_reports_an_unfinished_frame() -> None:
    dec = MllpDecoder()
    dec.feed(b"\x0bMSH|partial")
    assert dec.close() == [FramingProblem("truncated", len(b"MSH|partial"))]
    assert dec.feed(frame(MSG_A)) == [MSG_A]  # usable again


def test_problems_kept_are_bounded() -> None:
    dec = MllpDecoder()
    for _ in range(1000):
        dec.feed(b"\x0bjunk" + b"\x0b")  # each start block truncates the previous frame
    assert len(dec.take_problems()) <= 100
    assert dec.totals["truncated"] >= 999
