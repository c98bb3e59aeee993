"""PII redaction on realistic transcript lines, as Whisper writes them."""

from __future__ import annotations

import pytest

from assist.redact import redact


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("My card is 4111 1111 1111 1111, expiry next May.", "My card is [card], expiry next May."),
        ("It's 4111-1111-1111-1111.", "It's [card]."),
        ("the number is 5500005555555559", "the number is [card]"),
        ("My social is 123-45-6789.", "My social is [ssn]."),
        ("Call me back at (555) 123-4567 please", "Call me back at [phone] please"),
        ("my number is +1 555 123 4567", "my number is [phone]"),
        ("Email me at jane.doe+bills@example.co.uk thanks", "Email me at [email] thanks"),
        ("it's jane at example dot com", "it's [email]"),
        ("Account number 98765432.", "Account number [number]."),
        (
            "It is four five six seven eight nine one two.",
            "It is [number].",
        ),
        ("The order number is one two three four five six.", "The order number is [number]."),
        # digits read out one by one, as Whisper writes them
        (
            "My card number is 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, C",
            "My card number is [card], C",
        ),
        ("My social is 1, 2, 3, 4, 5, 6, 7, 8, 9", "My social is [number]"),
        ("it's 7.7.3.4.9.1.2", "it's [number]"),
        # what must stay
        ("I've called three times in two weeks.", "I've called three times in two weeks."),
        ("That's $45.99 for 12 months", "That's $45.99 for 12 months"),
        ("Press 1 for billing, 2 for support.", "Press 1 for billing, 2 for support."),
        ("Your ticket is in the 2024 queue", "Your ticket is in the 2024 queue"),
        ("Steps 1, 2, 3 and you're done.", "Steps 1, 2, 3 and you're done."),
    ],
)
def test_redaction(said, stored):
    assert redact(said) == stored


def test_nothing_numeric_survives_in_a_card_read_slowly():
    out = redact("card four one one one, one one one one, one one one one, one one one one")
    assert not any(ch.isdigit() for ch in out)
    assert "[" in out
