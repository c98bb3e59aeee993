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


# -- PINs, international phone numbers, spoken e-mail addresses -----------------------


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        # PINs and passcodes: any digits after the word
        ("My PIN is 1 2 3 4.", "My PIN is [number]."),
        ("The pin is four four seven one", "The pin is [number]"),
        ("PIN 0 0 4 2", "PIN [number]"),
        ("my pin code is 9 8", "my pin code is [number]"),
        ("pin is double seven double one", "pin is [number]"),
        ("my passcode is six seven eight nine", "my passcode is [number]"),
        ("the password is 4 4 2 1", "the password is [number]"),
        # phone numbers, international and national, written and spoken
        ("call me on +44 20 7946 0958", "call me on [phone]"),
        ("the number is +49 30 901820", "the number is [phone]"),
        ("+61 2 9374 4000 is the office", "[phone] is the office"),
        ("my cell is 415-555-2671", "my cell is [phone]"),
        ("Call 1-800-555-0199", "Call [phone]"),
        (
            "call me on plus four four, two oh, seven nine four six, oh nine five eight",
            "call me on [phone]",
        ),
        ("it's double oh four four two oh seven nine four six oh nine five eight", "it's [phone]"),
        (
            "the office is double oh three three, one, four two, six eight, five one, two three",
            "the office is [phone]",
        ),
        (
            "zero one one four four two zero seven nine four six zero nine five eight",
            "[phone]",
        ),
        (
            "my mobile is oh seven nine one one, one two three, four five six",
            "my mobile is [phone]",
        ),
        ("you can reach me at 0 2 0 7 9 4 6 0 9 5 8", "you can reach me at [phone]"),
        (
            "reach me at plus one, two one two, five five five, one two three four",
            "reach me at [phone]",
        ),
        (
            "my mobile is oh seven seven double oh nine double zero one two three",
            "my mobile is [number]",
        ),
        # e-mail addresses spoken, written, or both
        ("it's john dot smith at gmail dot com", "it's [email]"),
        ("my email is mary underscore jones at yahoo dot co dot uk", "my email is [email]"),
        ("send it to j o h n smith at hotmail dot com please", "send it to [email] please"),
        ("It's anna.lee at outlook.com", "It's [email]"),
        ("email k dash patel at example dot org", "email [email]"),
        ("That's bob at gmail", "That's [email]"),
        ("jane at icloud dot com is my address", "[email] is my address"),
        (
            "my email address is sam dot o dot connor at gmail dot com",
            "my email address is [email]",
        ),
        ("Write to JOHN.SMITH@GMAIL.COM today", "Write to [email] today"),
        ("My email is jon.mit me at email.com", "My email is [email]"),  # as Whisper heard it
        # expiry, security code, date of birth in more spoken forms
        ("the expiry is oh nine slash twenty six", "the expiry is [number] slash [number]"),
        ("expires December twenty twenty seven", "expires December [number]"),
        ("valid thru 0 3 / 2 8", "valid thru [number]"),
        (
            "the three digits on the back are seven three seven",
            "the three digits on the back are [number]",
        ),
        ("CVC is four four one", "CVC is [number]"),
        ("security code, one two three four", "security code, [number]"),
        (
            "date of birth is the fourth of July nineteen eighty two",
            "date of birth is the fourth of July [number]",
        ),
        # what must stay
        ("Let me look at that for you", "Let me look at that for you"),
        ("I'll pin that to the top of your account", "I'll pin that to the top of your account"),
        ("We are open nine to five", "We are open nine to five"),
        ("Press 0 for the operator", "Press 0 for the operator"),
        ("It's about 2 weeks late", "It's about 2 weeks late"),
        ("Meet me at noon dot", "Meet me at noon dot"),
        ("Your plan costs $49 a month", "Your plan costs $49 a month"),
        ("Call back in 5 minutes", "Call back in 5 minutes"),
        ("I'm at home", "I'm at home"),
        ("The first 3 months are free", "The first 3 months are free"),
    ],
)
def test_redaction_of_pins_phones_and_emails(said, stored):
    assert redact(said) == stored


def test_the_words_of_a_spoken_address_go_even_without_digits():
    redactor = SpokenNumberRedactor()
    said = "my email is john dot smith at gmail dot com thanks"
    words = [" my", " email", " is", " john", " dot", " smith", " at", " gmail", " dot", " com",
             " thanks"]  # fmt: skip
    out = redactor.redact_utterance(said, 0.0, 3.0, 0, True, words)
    assert out.text == "my email is [email] thanks"
    assert out.words == (" my", " email", " is", *["[redacted]"] * 7, " thanks")


def test_words_without_a_cut_are_left_as_they_are():
    out = SpokenNumberRedactor().redact_utterance("one moment please", words=[" one", " moment"])
    assert (out.text, out.words) == ("one moment please", (" one", " moment"))


# -- corrections: what was published before the context was known ----------------------


def test_an_earlier_group_said_in_a_sentence_is_corrected_when_the_next_group_comes():
    customer, agent = call()
    words = [" I", " think", " mine", " begins", " with", " 411"]
    first = customer.redact_utterance("I think mine begins with 411", 0.0, 2.0, 0, True, words)
    assert first.text == "I think mine begins with 411"  # nothing says it is a card yet
    assert customer.context.take_corrections() == []
    assert agent.redact_utterance("Okay.", 2.5, 3.0, 0).text == "Okay."
    assert customer.redact_utterance("1111 1111", 3.5, 5.0, 1).text == "[number]"
    (fix,) = customer.context.take_corrections()
    assert (fix.channel, fix.key) == ("customer", 0)
    assert fix.text == "I think mine begins with [number]"
    assert fix.words == (" I", " think", " mine", " begins", " with", "[redacted]")
    assert customer.context.take_corrections() == []  # each correction once


def test_a_group_that_came_back_before_the_question_is_corrected():
    customer, agent = call()
    assert customer.redact("yeah, so 42 I think", 5.0, 6.0, 3) == "yeah, so 42 I think"
    agent.redact("What are the last digits of the card?", 2.0, 4.0, 1)
    (fix,) = customer.context.take_corrections()
    assert (fix.key, fix.text) == (3, "yeah, so [number] I think")


def test_a_chain_of_groups_is_corrected_back_to_its_first():
    customer, _ = call()
    assert customer.redact("I have 41 here", 0.0, 1.0, 0) == "I have 41 here"
    assert customer.redact("I see 12 next", 2.0, 3.0, 1) == "I see 12 next"
    assert customer.redact("5555 5555 5555", 4.0, 6.0, 2) == "[number]"
    fixes = customer.context.take_corrections()
    assert [(f.key, f.text) for f in fixes] == [
        (0, "I have [number] here"),
        (1, "I see [number] next"),
    ]


def test_a_final_hides_what_its_partial_hid():
    customer, _ = call()
    assert customer.redact_utterance("so 12 34", 0.0, 1.0, 0, final=False).text == "so [number]"
    final = customer.redact_utterance("so 12 34 right now I guess", 0.0, 2.0, 0)
    assert final.text == "so [number] right now I guess"


def test_partials_and_far_away_utterances_are_never_corrected():
    customer, agent = call()
    customer.redact_utterance("I have 41", 0.0, 1.0, 0, final=False)
    customer.redact_utterance("I paid for 12 months", 100.0, 101.0, 7)  # far from any topic
    agent.redact("Can I have the card number?", 170.0, 172.0, 0)  # 69 s later
    assert customer.context.take_corrections() == []


def test_a_correction_never_shows_what_was_hidden():
    customer, _ = call()
    assert customer.redact("it's 4111", 0.0, 1.0, 0) == "it's [number]"
    # its final: judged afresh, cuts grow only from here
    assert customer.redact("it's 4111 I think", 0.0, 1.5, 0) == "it's [number] I think"
    customer.redact("1111", 2.0, 3.0, 1)
    assert all("4111" not in f.text for f in customer.context.take_corrections())


def test_no_three_digits_survive_once_corrections_are_applied():
    """Random cards, the first group in an ordinary sentence before any topic: once the
    corrections replace what was published, no three digits of the card are readable."""
    rng = random.Random(99)
    for case in range(200):
        card = _luhn_card(rng)
        customer, agent = call()
        groups = [_spell(g, rng) for g in _split(card, rng)]
        opening = rng.choice(["I think mine begins with {}", "Well I have {} here", "{} I guess"])
        texts = [opening.format(groups[0])] + [rng.choice(_BARE).format(g) for g in groups[1:]]
        shown: dict[int, str] = {}
        t = 0.0
        for key, text in enumerate(texts):
            span = 0.3 * len(text.split()) + 0.5
            shown[key] = customer.redact(text, t, t + span, key)
            for fix in customer.context.take_corrections():
                shown[fix.key] = fix.text
            if rng.random() < 0.5:
                agent.redact("Okay.", t + span + 0.2, t + span + 0.6, key)
            t += span + rng.uniform(0.5, 2.0)
        published = " ".join(shown[k] for k in sorted(shown))
        assert not _leaked(card, published), (case, texts, shown)
