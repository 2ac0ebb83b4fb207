"""Domain errors of the monitoring app (STYLE.md convention 5).

Pure: no Django import, so the HL7 parser (``monitoring.hl7.parse``) can raise these and the
listener turns them into an ``AE``/``AR`` acknowledgement at the edge (``monitoring.hl7.ack``).
"""

from __future__ import annotations

from typing import Literal

RejectCode = Literal["AE", "AR"]

# HL7 v2 table 0357 ("Message error condition codes"), the codes this app uses. The ERR segment
# carries one of these next to the human-readable reason.
HL7_ERROR_TEXT: dict[str, str] = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "207": "Application internal error",
}


class MessageRejected(Exception):
    """An inbound HL7 message that must not be stored; answer it with ``ack_code``.

    Contract (issue 5): a rejected message changes nothing.

    - ``"AR"``: not an HL7 message at all, no usable MSH, or a message type / version KetaSafe
      does not accept (anything but ORU^R01, HL7 outside 2.3-2.6).
    - ``"AE"``: an ORU^R01 whose structure breaks the standard so that it cannot be stored as it
      is (e.g. OBX-5 valued with OBX-2 empty; MSH-10 missing).

    ``reason`` is one readable sentence for MSA-3/ERR-8 and the log. ``control_id`` is MSH-10 when
    it could be read (echoed in MSA-2). ``error_code`` is from HL7 table 0357 and ``location`` is
    (segment id, occurrence of that segment in the message counting from 1, field number) when a
    single place is to blame. The header fields let the ACK be addressed back to the sender.
    """

    def __init__(
        self,
        ack_code: RejectCode,
        reason: str,
        control_id: str | None,
        *,
        error_code: str = "207",
        location: tuple[str, int, int] | None = None,
        sending_app: str | None = None,
        sending_facility: str | None = None,
        version: str | None = None,
    ) -> None:
        self.ack_code: RejectCode = ack_code
        self.reason = " ".join(reason.split())
        self.control_id = control_id
        self.error_code = error_code
        self.location = location
        self.sending_app = sending_app
        self.sending_facility = sending_facility
        self.version = version
        super().__init__(f"{ack_code}: {self.reason}")
