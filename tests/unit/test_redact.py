"""PII redaction on realistic transcript lines, as Whisper writes them."""

from __future__ import annotations

import random

import pytest

from assist.redact import SpokenNumberRedactor, digit_runs, redact, redact_word


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
        # every way a recognizer writes digits read out
        ("4111 1111", "[number]"),
        ("41 11 11 11", "[number]"),
        ("4, 1, 1, 1", "[number]"),
        ("4-1-1-1", "[number]"),
        ("4. 1. 1. 1.", "[number]."),
        ("four one one one", "[number]"),
        ("Four, one, one, one.", "[number]."),
        ("4 one 1 one", "[number]"),
        ("double four, double one", "[number]"),
        ("triple one five", "[number]"),
        ("forty one eleven", "[number]"),
        ("forty-one, eleven, eleven, eleven", "[number]"),
        ("four one, uh, one one", "[number]"),
        ("It's uh 5500.", "It's uh [number]."),
        ("It starts with 4111", "It starts with [number]"),
        ("Oh, 4111", "Oh, [number]"),
        # a sensitive topic in the same utterance: short groups go too
        ("My card number is four one one one", "My card number is [number]"),
        ("The expiry is 1 2 2 7.", "The expiry is [number]."),
        ("The expiry is 12/27.", "The expiry is [number]."),
        ("expiration twelve twenty-seven", "expiration [number]"),
        ("expires oh nine twenty six", "expires [number]"),
        ("And the security code is 7 3 7.", "And the security code is [number]."),
        ("CVV is seven three seven", "CVV is [number]"),
        ("the last digits are 42", "the last digits are [number]"),
        # what must stay
        ("I'll need twenty minutes.", "I'll need twenty minutes."),
        ("It cost four hundred dollars.", "It cost four hundred dollars."),
        ("We have 2 options, 3 with the upgrade", "We have 2 options, 3 with the upgrade"),
        ("Oh, I see. The one on the left.", "Oh, I see. The one on the left."),
        ("Let me double check that for you", "Let me double check that for you"),
        ("It renews in twenty twenty five", "It renews in twenty twenty five"),
    ],
)
def test_redaction(said, stored):
    assert redact(said) == stored


def test_nothing_numeric_survives_in_a_card_read_slowly():
    out = redact("card four one one one, one one one one, one one one one, one one one one")
    assert not any(ch.isdigit() for ch in out)
    assert "[" in out


def call() -> tuple[SpokenNumberRedactor, SpokenNumberRedactor]:
    redactors = SpokenNumberRedactor.for_call(["customer", "agent"])
    return redactors["customer"], redactors["agent"]


def test_a_card_read_in_groups_across_utterances_goes_group_by_group():
    """Field case F06: four groups of four, the agent saying "okay" in between."""
    customer, agent = call()
    assert agent.redact("Please read me the card number.", 0.5, 2.3, 0) == (
        "Please read me the card number."
    )
    assert customer.redact("Sure. The card number is", 2.9, 5.1, 0) == "Sure. The card number is"
    t, said = 6.0, []
    for i in range(4):
        said.append(customer.redact("1 1 1 1." if i else "4 1 1 1.", t, t + 1.5, i + 1))
        assert agent.redact("Okay.", t + 1.9, t + 2.4, i + 1) == "Okay."
        t += 2.9
    assert said == ["[number]."] * 4
    assert customer.redact("The expiry is 1 2 2 7.", 17.9, 20.4, 5) == "The expiry is [number]."
    assert customer.redact("And the security code is 7 3 7.", 21.3, 24.5, 6) == (
        "And the security code is [number]."
    )
    assert agent.redact("Thank you, that is all set.", 25.3, 27.3, 5) == (
        "Thank you, that is all set."
    )


def test_groups_continue_a_run_even_in_sentences_and_without_a_topic():
    customer, _ = call()
    said = [
        customer.redact(text, t, t + 1.0, i)
        for i, (text, t) in enumerate(
            [("It begins with 4111", 0.0), ("then 12", 2.0), ("and after that 99", 4.0)]
        )
    ]
    assert said == ["It begins with [number]", "then [number]", "and after that [number]"]


def test_the_other_side_naming_the_topic_makes_a_short_group_sensitive():
    customer, agent = call()
    agent.redact("And the security code on the back?", 10.0, 12.0, 0)
    assert customer.redact("I think the code would be 73", 12.5, 14.0, 0) == (
        "I think the code would be [number]"
    )
    agent.redact("And the expiry?", 14.5, 15.5, 1)
    assert customer.redact("twelve, twenty seven", 16.0, 17.0, 1) == "[number]"


def test_context_is_media_time_not_arrival_order():
    customer, agent = call()
    # the group's transcript comes back before the agent's question that preceded it
    assert customer.redact("yeah, so 42 I think", 5.0, 6.0, 3) == "yeah, so 42 I think"
    agent.redact("What are the last digits of the card?", 2.0, 4.0, 1)
    assert customer.redact("yeah, so 42 I think", 5.0, 6.0, 3) == "yeah, so [number] I think"
    # far from any topic (media time), short numbers stay
    assert customer.redact("I paid for 12 months", 40.0, 41.0, 8) == "I paid for [number] months"
    assert customer.redact("I paid for 12 months", 200.0, 201.0, 9) == "I paid for 12 months"


def test_a_partial_and_its_final_count_once():
    customer, _ = call()
    assert customer.redact("Sure, 12", 1.0, 2.0, 7) == "Sure, 12"  # partial
    assert customer.redact("Sure, 12 months", 1.0, 3.0, 7) == "Sure, 12 months"  # its final
    assert customer.redact("Sure, 12 months", 3.5, 5.0, 8) == "Sure, 12 months"  # replaced
    customer, _ = call()
    assert customer.redact("Sure, 12", 1.0, 2.0, 7) == "Sure, 12"  # a final on its own
    assert customer.redact("Sure, 12 months", 3.5, 5.0, 8) == "Sure, [number] months"


@pytest.mark.parametrize(
    "said",
    [
        "I've called three times in two weeks.",
        "That's $45.99 for 12 months",
        "Press 1 for billing, 2 for support.",
        "Your ticket is in the 2024 queue",
        "Steps 1, 2, 3 and you're done.",
        "Oh, okay. One moment.",
    ],
)
def test_ordinary_numbers_stay_across_a_call_without_a_topic(said):
    customer, agent = call()
    agent.redact("Thanks for calling, how can I help?", 0.0, 2.0, 0)
    assert customer.redact("Hi, it's about my bill.", 2.5, 4.0, 0) == "Hi, it's about my bill."
    assert customer.redact(said, 30.0, 33.0, 1) == said
    assert agent.redact(said, 40.0, 43.0, 1) == said


def test_words_carrying_digits_or_number_words_go():
    said = "Sure, it's 4111 four one-one double one oh, and the rest"
    kept = [redact_word(w) for w in said.split()]
    assert kept == [
        "Sure,", "it's", "[redacted]", "[redacted]", "[redacted]", "[redacted]", "[redacted]",
        "[redacted]", "and", "the", "rest",
    ]  # fmt: skip
    assert redact_word("someone") == "someone"


# -- property: random cards, random splits and spellings, never a 3-digit piece ---------

_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
          "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _luhn_card(rng: random.Random) -> str:
    prefix = rng.choice(["4", "51", "55", "6011", "34", "37"])
    length = 15 if prefix in ("34", "37") else 16
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(body + check)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return body + check
    raise AssertionError


def _word(d: str, rng: random.Random) -> str:
    return rng.choice(["oh", "zero"]) if d == "0" else _WORDS[int(d)]


def _pair(p: str, rng: random.Random) -> str:
    if p[0] == "0":
        return f"{_word('0', rng)} {_WORDS[int(p[1])]}"
    if p[0] == "1":
        return _TEENS[int(p[1])]
    unit = "" if p[1] == "0" else rng.choice([" ", "-"]) + _WORDS[int(p[1])]
    return _TENS[int(p[0])] + unit


def _spell(group: str, rng: random.Random) -> str:
    """One digit group as a recognizer might write it."""
    style = rng.choice(
        ["digits", "spaced", "commas", "dashes", "periods", "words", "mixed", "pairs", "repeats"]
    )
    if style == "digits":
        return group
    if style == "spaced":
        return " ".join(group)
    if style == "commas":
        return ", ".join(group)
    if style == "dashes":
        return "-".join(group)
    if style == "periods":
        return ". ".join(group) + "."
    if style == "words":
        return rng.choice([" ", ", "]).join(_word(d, rng) for d in group)
    if style == "mixed":
        return " ".join(d if rng.random() < 0.5 else _word(d, rng) for d in group)
    if style == "pairs":
        pieces = [group[i : i + 2] for i in range(0, len(group), 2)]
        return " ".join(
            _pair(p, rng) if len(p) == 2 and rng.random() < 0.8 else " ".join(p) for p in pieces
        )
    out, i = [], 0  # repeats: "double four", "triple one"
    while i < len(group):
        n = 1
        while i + n < len(group) and group[i + n] == group[i] and n < 3:
            n += 1
        if n > 1:
            out.append(("double " if n == 2 else "triple ") + _word(group[i], rng))
        else:
            out.append(_word(group[i], rng) if rng.random() < 0.5 else group[i])
        i += n
    return " ".join(out)


def _split(number: str, rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        size = 5 if len(number) == 15 and rng.random() < 0.5 else 4
        return [number[i : i + size] for i in range(0, len(number), size)]
    groups, i = [], 0
    while i < len(number):
        n = rng.randint(3, 6)
        groups.append(number[i : i + n])
        i += n
    return groups


_BARE = ["{}", "{}.", "uh, {}", "{}, okay?", "then {}", "it's {}", "Sure, {}", "and {}"]
_IN_SENTENCE = ["I have {} next", "after that comes {}", "{} is what I see", "I read {} here"]


def _leaked(secret: str, text: str) -> list[str]:
    digits = "".join(digit_runs(text))
    return [secret[i : i + 3] for i in range(len(secret) - 2) if secret[i : i + 3] in digits]


def test_no_three_digits_of_a_card_expiry_or_code_survive_any_split_or_spelling():
    rng = random.Random(1234)
    for case in range(300):
        card = _luhn_card(rng)
        expiry = f"{rng.randint(1, 12):02d}{rng.randint(24, 35)}"
        cvv = "".join(rng.choice("0123456789") for _ in range(4 if card[0] == "3" else 3))
        customer, agent = call()
        utterances: list[tuple[SpokenNumberRedactor, str]] = []
        context = rng.choice(["agent asks", "customer says", "none"])
        if context == "agent asks":
            utterances.append((agent, "Can I get the card number please?"))
        groups = [_spell(g, rng) for g in _split(card, rng)]
        if rng.random() < 0.2:
            groups = [" ".join(groups)]  # read in one breath
        for i, group in enumerate(groups):
            if i == 0 and context == "customer says":
                template = "Sure, my card number is {}"
            elif i == 0 and context == "none":
                template = rng.choice(_BARE)  # nothing said before: a bare group
            else:
                template = rng.choice(_BARE + _IN_SENTENCE)
            utterances.append((customer, template.format(group)))
            if rng.random() < 0.7:
                utterances.append((agent, rng.choice(["Okay.", "Mm-hmm.", "Got it."])))
        exp_said = _spell(expiry[:2], rng) + rng.choice([" ", "/", ", "]) + _spell(expiry[2:], rng)
        utterances.append((customer, rng.choice(["The expiry is {}", "expires {}", "{}"])))
        utterances[-1] = (customer, utterances[-1][1].format(exp_said))
        code = rng.choice(["And the security code is {}", "CVV {}", "the code on the back, {}"])
        utterances.append((customer, code.format(_spell(cvv, rng))))
        timed = []
        t = 0.0
        for who, text in utterances:
            span = 0.3 * len(text.split()) + 0.5
            timed.append((who, text, t, t + span, len(timed)))
            t += span + rng.uniform(0.2, 1.5)
        if rng.random() < 0.3:  # transcripts come back out of order (the first stays first)
            rest = timed[1:]
            rng.shuffle(rest)
            timed = timed[:1] + rest
        for who, text, start, end, key in timed:
            out = who.redact(text, start, end, key)
            words = " ".join(redact_word(w) for w in text.split()) if out != text else text
            for secret in (card, expiry, cvv):
                assert not _leaked(secret, out), (case, secret, text, out)
                assert not _leaked(secret, words), (case, secret, text, words)
