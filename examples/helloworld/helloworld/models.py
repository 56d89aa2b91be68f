"""Methods mixed into the Question model through `x-parent`."""

from __future__ import annotations


class QuestionMixin:
    text: str

    def is_rhetorical(self) -> bool:
        return self.text.rstrip().endswith("?!")
