"""18-character Salesforce record ids: key prefix, base-62 body, case-safe checksum (§3.4)."""

from __future__ import annotations

import threading

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "Lead": "00Q",
    "User": "005",
    "Organization": "00D",
    "BulkJob": "750",
    "QueryLocator": "01g",
}


def checksum(id15: str) -> str:
    """The three case-safe characters: one per 5-character chunk, a bit per upper-case letter."""
    suffix = ""
    for chunk_start in range(0, 15, 5):
        bits = 0
        for position, char in enumerate(id15[chunk_start : chunk_start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def to_base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def make_id(prefix: str, number: int, pod: str = "RO") -> str:
    """An 18-character id: prefix (3) + pod (2) + 10 base-62 digits of `number` + checksum."""
    id15 = prefix + pod + to_base62(number, 10)
    return id15 + checksum(id15)


def is_valid_id(value: str) -> bool:
    return len(value) == 18 and checksum(value[:15]) == value[15:] and all(c in _BASE62 for c in value[:15])


class IdAllocator:
    """Hands out increasing ids; `next_number` is persisted by the store so ids never repeat."""

    def __init__(self, start: int = 1) -> None:
        self._lock = threading.Lock()
        self.next_number = start

    def next(self, prefix: str) -> str:
        return self.reserve(prefix, 1)[0]

    def reserve(self, prefix: str, count: int) -> list[str]:
        with self._lock:
            first = self.next_number
            self.next_number += count
        return [make_id(prefix, number) for number in range(first, first + count)]


def canonical_id(value: str) -> str | None:
    """The 18-character id for a 15-character one or an 18-character one in any letter case
    (its checksum tells which letters are upper-case); None when it is no id."""
    if len(value) == 15 and all(c in _BASE62 for c in value):
        return value + checksum(value)
    if len(value) != 18 or not all(c in _BASE62 for c in value):
        return None
    suffix = value[15:].upper()
    if any(c not in _CHECKSUM_ALPHABET for c in suffix):
        return None
    chars = list(value[:15])
    for chunk, code in enumerate(suffix):
        bits = _CHECKSUM_ALPHABET.index(code)
        for position in range(5):
            index = chunk * 5 + position
            upper = bool(bits & (1 << position))
            if chars[index].isalpha():
                chars[index] = chars[index].upper() if upper else chars[index].lower()
            elif upper:
                return None
    id15 = "".join(chars)
    return id15 + checksum(id15)
