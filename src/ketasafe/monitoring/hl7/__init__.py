"""HL7 v2 from bedside monitors: MLLP framing, ORU^R01 parsing, code maps and ACKs. Pure.

The listener's ``process_message(raw)`` is meant to be, in order::

    try:
        msg = parse_oru(raw, default_tz=clinic_tz)          # may raise MessageRejected
    except MessageRejected as exc:
        return ack_rejected(exc, now=now)                   # AE/AR, nothing stored
    mapped = [map_observation(o, code_map_for(msg.sending_app)) for o in msg.observations]
    ... store msg + observations in one transaction, once per msg.dedup_key ...
    return ack_accepted(msg, now=now)                       # only after the commit
"""

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7.ack import ack_accepted, ack_rejected, build_ack
from ketasafe.monitoring.hl7.codes import (
    DEFAULT_CODE_MAP,
    CodeMapEntry,
    MappedObservation,
    build_code_map,
    map_observation,
)
from ketasafe.monitoring.hl7.mllp import FramingProblem, MllpDecoder, frame
from ketasafe.monitoring.hl7.parse import ParsedMessage, ParsedObservation, parse_oru

__all__ = [
    "DEFAULT_CODE_MAP",
    "CodeMapEntry",
    "FramingProblem",
    "MappedObservation",
    "MessageRejected",
    "MllpDecoder",
    "ParsedMessage",
    "ParsedObservation",
    "ack_accepted",
    "ack_rejected",
    "build_ack",
    "build_code_map",
    "frame",
    "map_observation",
    "parse_oru",
]
