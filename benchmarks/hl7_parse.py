"""Hot path: parse_oru (python-hl7 + our reading of it) and parse_oru_fast (the focused parser
the listener uses, differential-tested against parse_oru) against bare hl7.parse.

Issue 5 asks to measure python-hl7 on the hot path before writing a parser of our own. The load
it must carry: monitors send about one message a minute per bed (IHE DEC, conformance README),
"several a minute at high acuity", so even 100 chairs at 10 messages a minute is ~17 msgs/s.

Run: .venv/bin/python benchmarks/hl7_parse.py   (last line: both rates and the ratio)
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import hl7  # noqa: E402

from ketasafe.monitoring.hl7.ack import ack_accepted  # noqa: E402
from ketasafe.monitoring.hl7.codes import DEFAULT_CODE_MAP, map_observation  # noqa: E402
from ketasafe.monitoring.hl7.fastparse import parse_oru_fast  # noqa: E402
from ketasafe.monitoring.hl7.parse import parse_oru  # noqa: E402

# A realistic PCD-01 vitals message: one OBR, an MDS-level device OBX and six vital numerics.
MESSAGE = "\r".join([
    "MSH|^~\\&|GW^0012A3FFFE456789^EUI-64|CLINIC||KETASAFE|20250301101500.123+0100||"
    "ORU^R01^ORU_R01|MSG000123456|P|2.6|||NE|AL||UNICODE UTF-8|||"
    "IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
    "PID|||MRN0042^^^KETASAFE^MR||Doe^Jane^^^^^L",
    "PV1||I|RECOVERY^2^CHAIR3",
    "OBR|1|ORD1^GW^0012A3FFFE456789^EUI-64|FIL1^GW^0012A3FFFE456789^EUI-64|"
    "182777000^monitoring of patient^SNOMED-CT|||20250301101500+0100",
    "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1|||||||X|||||||0012A3FFFE456789^EUI-64",
    "OBX|2|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.1|132|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20250301101455+0100",
    "OBX|3|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.1.1.2|84|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20250301101455+0100",
    "OBX|4|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.1.1.3|100|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20250301101455+0100",
    "OBX|5|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|71|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R",
    "OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|97|262688^MDC_DIM_PERCENT^MDC|||||R",
    "OBX|7|NM|151562^MDC_RESP_RATE^MDC|1.4.1.1|14|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R",
]) + "\r"  # fmt: skip
RAW = MESSAGE.encode()
LOAD_MSGS_PER_S = 100 * 10 / 60  # 100 chairs, 10 messages a minute each


def rate(func: object, number: int) -> float:
    timer = timeit.Timer(func)  # type: ignore[arg-type]
    best = min(timer.repeat(repeat=5, number=number))
    return number / best


def main() -> None:
    number = 3000
    bare = rate(lambda: hl7.parse(MESSAGE), number)
    ours = rate(lambda: parse_oru(RAW, default_tz=UTC), number)
    fast = rate(lambda: parse_oru_fast(RAW, default_tz=UTC), number)
    mapped = rate(
        lambda: [map_observation(o) for o in parse_oru(RAW, default_tz=UTC).observations], number
    )
    # The listener's other per-message steps, in µs: map_observation per OBX, and the AA with
    # one ``now`` for the batch (as _process_batch) or a new one each time.
    msg = parse_oru_fast(RAW, default_tz=UTC)
    now = datetime(2025, 3, 1, 10, 15, 30, tzinfo=UTC)
    nows = [now + timedelta(seconds=n) for n in range(number * 20)]
    per_obx = 1e6 / rate(lambda: [map_observation(o, DEFAULT_CODE_MAP) for o in msg.observations], number)
    per_obx /= len(msg.observations)
    ack_batch = 1e6 / rate(lambda: ack_accepted(msg, now=now), number * 4)
    fresh = iter(nows)
    ack_fresh = 1e6 / rate(lambda: ack_accepted(msg, now=next(fresh)), number * 4)
    print(f"message: {len(RAW)} bytes, 1 OBR, 7 OBX (6 vital numerics)")
    print(f"reference load: {LOAD_MSGS_PER_S:.1f} msgs/s (100 chairs x 10 msgs/min)")
    print(f"parse_oru + map_observation: {mapped:,.0f} msgs/s")
    print(f"parse_oru_fast: {1e6 / fast:.1f} µs; map_observation: {per_obx:.2f} µs per OBX; "
          f"ack_accepted: {ack_batch:.2f} µs (one now per batch), {ack_fresh:.2f} µs (new now)")
    print(
        f"hl7.parse: {bare:,.0f} msgs/s; parse_oru: {ours:,.0f} msgs/s; parse_oru_fast: {fast:,.0f} msgs/s; "
        f"time against hl7.parse: parse_oru {bare / ours:.2f}x, parse_oru_fast {bare / fast:.2f}x"
    )


if __name__ == "__main__":
    main()
