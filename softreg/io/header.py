"""What the first lines of delimited text say: its delimiter, and whether its first row is a header."""

from __future__ import annotations

from collections.abc import Sequence

from softreg.io.cells import MISSING_TOKENS, is_number


def sniff_delimiter(first_line: str) -> str:
    """The most frequent of ``, ; TAB |`` in the header line (comma when none occurs)."""
    counts = {candidate: first_line.count(candidate) for candidate in (",", ";", "\t", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else ","


def is_missing(cell: str) -> bool:
    """Whether a cell is one of the missing-value tokens (empty, NA, NaN, null, ?, ...)."""
    return cell.strip().lower() in MISSING_TOKENS


HEADER_LOOKAHEAD = 100  # rows below the first that decide whether it is a header


def looks_like_header(first: Sequence[str], below: Sequence[Sequence[str]]) -> bool:
    """Whether ``first`` is a header row, from the columns below it:

    - a text cell (not a number, not missing) over a numeric column, or over text of one
      length other than its own (as `csv.Sniffer.has_header` compares lengths), says header;
    - otherwise a number over a numeric column says data (a headerless file whose rows carry
      text labels reads as data);
    - with neither, the first row is a header unless all its cells are numbers.

    A header whose names are all numbers cannot be told from data (set ``data.header: true``).
    """
    if not below:
        return not all(is_number(cell) for cell in first)
    numbers_over_numbers = False
    for index, cell in enumerate(first):
        cell = cell.strip()
        column = [row[index].strip() for row in below if index < len(row)]
        present = [value for value in column if not is_missing(value)]
        if not present or is_missing(cell):
            continue
        numeric_below = all(is_number(value) for value in present)
        if is_number(cell):
            numbers_over_numbers = numbers_over_numbers or numeric_below
            continue
        if numeric_below:
            return True
        lengths = {len(value) for value in present}
        if len(lengths) == 1 and len(cell) not in lengths and not any(is_number(value) for value in present):
            return True
    if numbers_over_numbers:
        return False
    return not all(is_number(cell) for cell in first)
