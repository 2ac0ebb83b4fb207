"""Domain errors of the outcomes app (STYLE.md convention 5: turned into a CLI exit or a form
error only at the edge)."""

from __future__ import annotations


class ScaleAnswersInvalid(ValueError):
    """A scale's answers cannot be scored.

    ``str()`` is one line naming the scale, the item when there is one, and the problem:
    ``"phq9: expected 9 answers, got 8"``, ``"phq9 item 3: 4 is outside 0-3"``.
    ``scale``, ``item`` (1-based, or None) and ``detail`` let callers that name fields their own
    way (the screening intake) rebuild the message.
    """

    def __init__(self, scale: str, detail: str, *, item: int | None = None) -> None:
        self.scale = scale
        self.item = item
        # One line, always: the CLI contract prints this as the single error line.
        self.detail = " ".join(detail.split())
        where = scale if item is None else f"{scale} item {item}"
        super().__init__(f"{where}: {self.detail}")


class UnknownScale(ScaleAnswersInvalid):
    """The scale id is not one KetaSafe scores."""
