"""Negative-phrasing rewrites: the quoted phrase and a rewrite that keeps the meaning."""

from __future__ import annotations

import pytest

from assist.nudges import GENERAL_ADVICE, rewrite
from assist.text.phrases import CATEGORIES, benign_idiom


@pytest.mark.parametrize(
    ("text", "category", "quote", "suggestion"),
    [
        (
            "I can't refund that.",
            "cant_wont",
            "I can't",
            "While I'm not able to refund that, what I can do is ...",
        ),
        (
            "Sorry, we won't be able to ship it before Friday.",
            "cant_wont",
            "we won't be able to",
            "Sorry, while I'm not able to ship it before Friday, what I can do is ...",
        ),
        ("There's nothing I can do.", "cant_wont", "There's nothing I can do", None),
        ("That's our policy, I'm afraid.", "policy", "That's our policy", None),
        ("Rules are rules.", "policy", "Rules are rules", None),
        ("You should have read the terms.", "blame", "You should have", None),
        ("That's not my department.", "not_my_job", "not my department", None),
        (
            "You have to fill out the form first.",
            "you_have_to",
            "You have to",
            "The next step is to fill out the form first.",
        ),
        (
            "Okay so you'll need to call back tomorrow",
            "you_have_to",
            "you'll need to",
            "Okay so the next step is to call back tomorrow.",
        ),
        (
            "I don't know when the technician will arrive.",
            "dont_know",
            "I don't know",
            "Let me find out when the technician will arrive for you.",
        ),
        ("I don't know.", "dont_know", "I don't know", "Let me find that out for you."),
        ("Calm down, sir.", "dismissive", "Calm down", None),
        (
            "Like I already told you, the refund takes five days.",
            "repetition",
            "Like I already told you",
            "To recap, the refund takes five days.",
        ),
        (
            "I've explained this twice.",
            "repetition",
            "I've explained this twice",
            "Let me put it another way: ...",
        ),
    ],
)
def test_quote_and_rewrite(text: str, category: str, quote: str, suggestion: str | None) -> None:
    found = rewrite(text, category)
    assert text[found.span[0] : found.span[1]] == quote
    if suggestion is not None:
        assert found.suggestion == suggestion
    assert found.suggestion != text


def test_rewrite_of_cant_keeps_the_pivot_it_teaches() -> None:
    """The rewrite is the issue's own good example: it must not read as negative."""
    found = rewrite("We can't waive the fee", "cant_wont")
    assert found.suggestion == "While I'm not able to waive the fee, what I can do is ..."


@pytest.mark.parametrize("category", CATEGORIES)
def test_no_phrase_found_gives_the_category_advice_over_the_whole_line(category: str) -> None:
    text = "Hmm, okay, well, let me see here."
    found = rewrite(text, category)
    assert found.span == (0, len(text))
    assert found.suggestion == GENERAL_ADVICE[category]


def test_every_category_has_advice() -> None:
    assert set(GENERAL_ADVICE) == set(CATEGORIES)


@pytest.mark.parametrize(
    ("text", "benign"),
    [
        ("There's no charge for that.", True),
        ("No problem at all.", True),
        ("I can't wait to help you with this.", True),
        ("You won't be charged again.", True),
        ("There's no extra fee for the second bag.", True),
        ("I can't refund that.", False),
        ("There's nothing I can do.", False),
        ("No, we don't do that.", False),
    ],
)
def test_benign_idioms(text: str, benign: bool) -> None:
    assert benign_idiom(text) is benign
