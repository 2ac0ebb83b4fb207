"""Simulated bedside monitors: realistic IHE PCD-01 ORU^R01 streams, one connection per chair.

Three courses, by minute since the start of the session (each message is one minute of the
course; ``interval`` says how many real seconds pass between messages, so a demo can run the
course faster than real time while the timestamps stay real):

- ``normal``: a ketamine session, blood pressure up 10-20 mmHg at 30-50 minutes, then back.
- ``hypertensive``: systolic peaking at about 185 mmHg (diastolic ~112) at about 40 minutes.
- ``desaturation``: SpO2 dips to about 88 % around 25 minutes, with a slower respiratory rate.

Pure apart from the networking in ``run_chair``; the message builder is used by the tests and
the benchmark as well.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
from dataclasses import dataclass

from .hl7.mllp import MllpDecoder, frame
from .hl7.timestamps import format_dtm

log = logging.getLogger("ketasafe.monitoring.simulator")

COURSES = ("normal", "hypertensive", "desaturation")
COURSE_MINUTES = 120  # then the course starts over (the demo runs forever)


@dataclass(frozen=True)
class Vitals:
    systolic: int
    diastolic: int
    heart_rate: int
    spo2: int
    resp_rate: int


def _bump(minute: float, peak_at: float, width: float) -> float:
    """A smooth 0..1..0 bump centred on ``peak_at``."""
    return math.exp(-((minute - peak_at) / width) ** 2)


def vitals_at(course: str, minute: float, rng: random.Random, base_sbp: int = 124, base_dbp: int = 78) -> Vitals:
    noise = rng.gauss
    sbp = base_sbp + 14 * _bump(minute, 40, 15)
    dbp = base_dbp + 8 * _bump(minute, 40, 15)
    hr = 72 + 10 * _bump(minute, 35, 15)
    spo2 = 97.5
    rr = 14.0
    if course == "hypertensive":
        sbp = base_sbp + 61 * _bump(minute, 40, 9)
        dbp = base_dbp + 34 * _bump(minute, 40, 9)
        hr = 74 + 22 * _bump(minute, 38, 10)
    elif course == "desaturation":
        spo2 = 97.5 - 9.5 * _bump(minute, 25, 4)
        rr = 14 - 5 * _bump(minute, 25, 5)
    return Vitals(
        systolic=round(sbp + noise(0, 2)), diastolic=round(dbp + noise(0, 1.5)), heart_rate=round(hr + noise(0, 2)),
        spo2=min(100, round(spo2 + noise(0, 0.5))), resp_rate=max(4, round(rr + noise(0, 0.7))))


def build_oru(*, control_id: str, at: dt.datetime, vitals: Vitals, bed: str = "", mrn: str = "",
              device: str = "0012A3FFFE000001", sender: str = "KSIM", version: str = "2.6") -> bytes:
    """A PCD-01 ORU^R01 as an IHE DEC gateway sends it: an MDS-level device OBX with the EUI-64
    in OBX-18, then the NIBP compound and its numerics, heart rate, SpO2 and respiratory rate,
    MDC codes and MDC units, containment ids in OBX-4."""
    ts = format_dtm(at)
    app = f"{sender}^{device}^EUI-64"
    segments = [
        f"MSH|^~\\&|{app}|KETASAFE-SIM||KETASAFE|{ts}||ORU^R01^ORU_R01|{control_id}|P|{version}|||NE|AL||"
        "UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        f"PID|||{mrn}^^^KETASAFE^MR||" if mrn else "PID|||||",
        f"PV1||I|{bed}" if bed else "PV1||I|",
        f"OBR|1|{control_id}^KSIM^{device}^EUI-64|{control_id}^KSIM^{device}^EUI-64|"
        f"182777000^monitoring of patient^SNOMED-CT|||{ts}",
        f"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1|||||||X|||||||{device}^EUI-64",
        "OBX|2||150020^MDC_PRESS_BLD_NONINV^MDC|1.0.1|||||||F",
        f"OBX|3|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|{vitals.systolic}|266016^MDC_DIM_MMHG^MDC|||||F|||{ts}",
        f"OBX|4|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.0.1.2|{vitals.diastolic}|266016^MDC_DIM_MMHG^MDC|||||F|||{ts}",
        f"OBX|5|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.2.1|{vitals.heart_rate}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
        f"OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.3.1|{vitals.spo2}|262688^MDC_DIM_PERCENT^MDC|||||F",
        f"OBX|7|NM|151562^MDC_RESP_RATE^MDC|1.0.4.1|{vitals.resp_rate}|264928^MDC_DIM_RESP_PER_MIN^MDC|||||F",
    ]
    return ("\r".join(segments) + "\r").encode()


@dataclass
class SimChair:
    bed: str
    course: str
    mrn: str = ""
    device: str = "0012A3FFFE000001"
    start_minute: int = 0


def device_id(n: int) -> str:
    return f"0012A3FFFE{n:06X}"


async def run_chair(host: str, port: int, chair: SimChair, *, interval: float, count: int | None,
                    seed: int = 0, ack_timeout: float = 30.0) -> int:
    """Send ``count`` messages (forever if None), one per ``interval`` seconds, waiting for each
    ACK before the next; reconnect when the listener goes away. Returns messages acknowledged."""
    rng = random.Random(seed)
    sent = acked = 0
    minute = chair.start_minute
    reader = writer = None
    decoder = MllpDecoder()
    while count is None or sent < count:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
                decoder = MllpDecoder()
            vitals = vitals_at(chair.course, minute % COURSE_MINUTES, rng)
            now = dt.datetime.now(dt.UTC)
            control_id = f"{chair.device[-6:]}-{now:%Y%m%d%H%M%S%f}-{sent}"
            writer.write(frame(build_oru(control_id=control_id, at=now, vitals=vitals, bed=chair.bed,
                                         mrn=chair.mrn, device=chair.device)))
            await writer.drain()
            acks: list[bytes] = []
            while not acks:
                assert reader is not None
                data = await asyncio.wait_for(reader.read(65536), ack_timeout)
                if not data:
                    raise ConnectionError("listener closed the connection")
                acks = decoder.feed(data)
            sent += 1
            minute += 1
            if b"MSA|AA|" in acks[0]:
                acked += 1
            else:
                log.warning("chair %s: %s", chair.bed, acks[0].decode(errors="replace").split("\r")[1:2])
        except (OSError, ConnectionError, TimeoutError) as exc:
            log.warning("chair %s: %s; retrying", chair.bed, exc)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(min(interval, 2.0) or 0.5)
            continue
        if interval:
            await asyncio.sleep(interval)
    if writer is not None:
        writer.close()
    return acked
