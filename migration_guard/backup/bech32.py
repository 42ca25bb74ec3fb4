"""Bech32 (BIP-173), the text encoding of age's keys (``age1...``, ``AGE-SECRET-KEY-1...``).

As in age, the 90-character limit of BIP-173 is not applied (an identity is 74
characters anyway, but the limit is not part of what age accepts); the checksum
is the original Bech32 constant (1), not Bech32m. A string is all lower or all
upper case, and the checksum is computed over the lower-case form.
"""

from __future__ import annotations

from typing import Final

CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES: Final = {char: value for value, char in enumerate(CHARSET)}
_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
#: Longer text is not a key; bounds the work spent on garbage.
MAX_LENGTH: Final = 1023


class Bech32Error(ValueError):
    """Text that is not valid Bech32; the message never repeats the text."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _expand(hrp: str) -> list[int]:
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _convert(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    accumulator = 0
    bits = 0
    out: list[int] = []
    maximum = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & maximum)
    if pad:
        if bits:
            out.append((accumulator << (to_bits - bits)) & maximum)
    elif bits >= from_bits or (accumulator << (to_bits - bits)) & maximum:
        raise Bech32Error("has non-zero padding or an incomplete group at the end of its data")
    return out


def encode(hrp: str, data: bytes, *, upper: bool = False) -> str:
    """The Bech32 text of ``data`` (bytes) under the human-readable part ``hrp``."""
    hrp = hrp.lower()
    if not hrp or any(not 33 <= ord(char) <= 126 for char in hrp):
        raise Bech32Error("has a human-readable part that is empty or not printable ASCII")
    words = _convert(data, 8, 5, pad=True)
    polymod = _polymod(_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp + "1" + "".join(CHARSET[word] for word in words + checksum)
    return text.upper() if upper else text


def decode_words(text: str) -> tuple[str, list[int]]:
    """The lower-case human-readable part and the 5-bit data words of Bech32 ``text``.

    Raises Bech32Error for mixed case, characters outside the alphabet, a missing
    separator, a too short checksum or a checksum that does not match.
    """
    if len(text) > MAX_LENGTH:
        raise Bech32Error(f"is longer than {MAX_LENGTH} characters")
    if any(not 33 <= ord(char) <= 126 for char in text):
        raise Bech32Error("contains a character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1:
        raise Bech32Error("has no human-readable part before the separator '1'")
    if separator + 7 > len(text):
        raise Bech32Error("is too short to hold a checksum")
    hrp = text[:separator]
    try:
        words = [_VALUES[char] for char in text[separator + 1 :]]
    except KeyError:
        raise Bech32Error("contains a character outside the Bech32 alphabet") from None
    if _polymod(_expand(hrp) + words) != 1:
        raise Bech32Error("fails its checksum (a character is wrong or missing)")
    return hrp, words[:-6]


def decode(text: str) -> tuple[str, bytes]:
    """The lower-case human-readable part and the bytes encoded in Bech32 ``text``."""
    hrp, words = decode_words(text)
    return hrp, bytes(_convert(words, 5, 8, pad=False))
