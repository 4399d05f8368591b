"""Generated credentials: base62 text of the asked length, every character equally likely."""

from __future__ import annotations

import string
from collections import Counter

from rostra.lib.secrets import random_token

BASE62 = set(string.digits + string.ascii_uppercase + string.ascii_lowercase)


def test_tokens_are_base62_of_their_length_and_differ() -> None:
    tokens = [random_token(length) for length in (1, 24, 43, 200) for _ in range(50)]
    assert all(set(token) <= BASE62 for token in tokens)
    assert sorted({len(token) for token in tokens}) == [1, 24, 43, 200]
    assert len({token for token in tokens if len(token) >= 24}) == 150


def test_every_character_is_about_equally_likely() -> None:
    counts = Counter("".join(random_token(62) for _ in range(2_000)))
    assert set(counts) == BASE62
    expected = 2_000  # 124,000 characters over 62
    # A byte-modulo mapping without dropping 248..255 would give the first eight characters
    # 5/4 of the others (about 2,480 against 1,984): far outside these bounds.
    assert all(0.85 * expected < count < 1.15 * expected for count in counts.values())
