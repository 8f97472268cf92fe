"""Slurm host lists (``node[01-03,7],gpu1``) expanded to host names, without calling Slurm."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def expand_hostlist(hostlist: str) -> list[str]:
    """The host names of a Slurm host list, in order.

    ``"node[01-03,7],gpu1"`` → ``["node01", "node02", "node03", "node7", "gpu1"]``. Several
    bracket groups in one name (``rack[1-2]-n[1-2]``) expand left to right; zero padding is kept.
    Raises ``ValueError`` for a malformed list.
    """
    names: list[str] = []
    for item in _split_top_level(hostlist.strip()):
        names.extend(_expand_item(item))
    return names


def _split_top_level(text: str) -> list[str]:
    """Split on the commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested brackets in host list {text!r}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in host list {text!r}")
        elif char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    if depth:
        raise ValueError(f"unbalanced '[' in host list {text!r}")
    items.append(text[start:])
    return [item for item in items if item]


def _expand_item(item: str) -> list[str]:
    opening = item.find("[")
    if opening < 0:
        return [item]
    closing = item.index("]", opening)
    prefix, ranges, rest = item[:opening], item[opening + 1 : closing], item[closing + 1 :]
    tails = _expand_item(rest)
    return [f"{prefix}{number}{tail}" for number in _numbers(ranges, item) for tail in tails]


def _numbers(ranges: str, item: str) -> list[str]:
    numbers: list[str] = []
    for part in ranges.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise ValueError(f"bad range {part!r} in host list item {item!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        width = len(first) if first.startswith("0") else 0
        if int(last) < int(first):
            raise ValueError(f"decreasing range {part!r} in host list item {item!r}")
        numbers.extend(str(n).zfill(width) for n in range(int(first), int(last) + 1))
    return numbers
