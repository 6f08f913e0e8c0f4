"""Text from data (class names, column names, paths) as people are shown it.

A name is data: it may hold any character, and a terminal obeys the control characters
among them (``\\x1b[2J`` clears the screen, ``\\x1b]0;title\\x07`` sets the window's title,
even from output meant for a pipe). Everything softreg prints or draws passes names through
`visible`; files meant for programs (predict's CSV, JSON documents) keep them as they are.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: a name is one line), DEL, C1 controls, and the
# bidirectional overrides and isolates that reorder what follows them on screen
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``str(text)`` with every control character written as its escape: ``"a\\x1bb"`` -> ``"a\\\\x1bb"``.

    Printable text, non-ASCII letters included, is returned unchanged.
    """
    return _CONTROL.sub(_escape, str(text))


def visible_lines(text: str) -> str:
    """`visible` line by line: a message's own line breaks stay, every other control character shows."""
    return "\n".join(visible(line) for line in text.split("\n"))
