"""Utterances are judged sentence by sentence, with the previous turn as context (#16).

Pure: the cutting of utterances, the context rules, and the detectors' decisions on an
utterance's per-sentence scores (the scores are written here; the real models are run in
``tests/text/``).
"""

from __future__ import annotations

import dataclasses

import pytest

from assist.config import CustomerFrustrationConfig, NegativePhrasingConfig
from assist.detectors.customer_frustration import CustomerFrustrationDetector
from assist.detectors.negative_phrasing import NegativePhrasingDetector, decide_utterance
from assist.text.context import (
    PreviousTurns,
    answers_courtesy,
    bare_acknowledgement,
    closes_call,
    excused,
    line_problem,
)
from assist.text.sentences import MAX_WORDS, WINDOW_WORDS, pieces_of, sentence_spans, sentences
from assist.vocabulary import TextScores
from tests.unit.test_text_cues import agent_scores, customer_scores, transcript

ISSUE = "I can't see any double charge here. That's not something I can change. It's how it policy."


def utterance(whole: TextScores, parts: list[TextScores]) -> TextScores:
    """The whole utterance's and its sentences' scores put together as
    ``TextClassifier.score_utterance`` does."""
    spans = sentence_spans(whole.text)
    assert [whole.text[a:b] for a, b in spans] == [p.text for p in parts]
    cut = tuple(dataclasses.replace(p, span=s) for p, s in zip(parts, spans, strict=True))
    return dataclasses.replace(whole, sentences=cut)


def test_sentences_are_cut_at_stops_but_not_after_titles() -> None:
    assert sentences(ISSUE) == [
        "I can't see any double charge here.",
        "That's not something I can change.",
        "It's how it policy.",
    ]
    assert sentences(
        "Mr. Smith, I can help today. Would Tuesday work for you? Yes; fine then."
    ) == [
        "Mr. Smith, I can help today.",
        "Would Tuesday work for you?",
        "Would Tuesday work for you? Yes; fine then.",
    ]
    # a short sentence joins the next one: one thought
    assert sentences("It's not impossible. Let me see what I can do.") == [
        "It's not impossible. Let me see what I can do."
    ]
    # short ones at the end join the one before, which is also judged alone
    assert sentences("Sure! Is that okay? Yes. I can do that for you right now. Fine.") == [
        "Sure! Is that okay?",
        "Yes. I can do that for you right now.",
        "Yes. I can do that for you right now. Fine.",
    ]
    assert sentences("It's our policy, sir. Anything else today?") == [
        "It's our policy, sir.",
        "It's our policy, sir. Anything else today?",
    ]
    assert sentences("I checked. No.") == ["I checked. No."]
    # a tail without words, or too long to judge together: no second piece
    assert sentences("It's our policy, sir. ...") == ["It's our policy, sir. ..."]
    long_last = " ".join(["word"] * 26) + ", then more words, and more. Thanks."
    spans = sentence_spans("Hello there, how are you. " + long_last)
    assert spans == sorted(set(spans))
    assert sentences("") == [] and sentences(" ... ") == []
    assert sentences("Okay") == ["Okay"]


def test_a_sentence_opening_with_a_connective_joins_the_one_before() -> None:
    # Whisper's full stop where the writer had a comma: one thought, judged whole
    assert sentences(
        "The deposit can't be refunded. However, I can move it to a new date at no cost."
    ) == ["The deposit can't be refunded. However, I can move it to a new date at no cost."]
    assert sentences("I hate to bother you. But could you check one more thing?") == [
        "I hate to bother you. But could you check one more thing?"
    ]
    assert sentences(
        "That's handled by our claims team. Um, so let me bring them on the line. Okay?"
    ) == [
        "That's handled by our claims team. Um, so let me bring them on the line.",
        "That's handled by our claims team. Um, so let me bring them on the line. Okay?",
    ]
    # a word that only starts like one is no connective; nor is one at the very start
    assert sentences("Butter is out of stock today. Sorry about the wait.") == [
        "Butter is out of stock today.",
        "Sorry about the wait.",
    ]
    assert sentences("But I already paid that bill. Twice, in fact, last week.") == [
        "But I already paid that bill.",
        "Twice, in fact, last week.",
    ]


def test_the_pieces_judged_besides_the_whole_never_repeat_it() -> None:
    text = " It's our policy, sir. Anything else today? "
    assert [text[a:b] for a, b in pieces_of(text)] == ["It's our policy, sir."]
    assert pieces_of("It's not impossible. Let me see what I can do.") == []
    assert len(pieces_of(ISSUE)) == 3


def test_a_long_run_on_without_punctuation_is_judged_in_overlapping_windows() -> None:
    text = (
        "okay so i had a look at the account and i cant see any double charge here thats"
        " not something i can change its how it policy and we tried everything already"
        " today so there is really nothing more"
    )
    pieces = sentences(text)
    assert len(text.split()) > MAX_WORDS
    assert all(len(p.split()) == WINDOW_WORDS for p in pieces)
    assert text.startswith(pieces[0]) and text.endswith(pieces[-1])
    # every word is in some window, and "not something i can change" whole in one
    covered = " ".join(pieces).split()
    assert set(text.split()) <= set(covered)
    assert any("not something i can change" in p for p in pieces)


def test_a_long_sentence_is_cut_at_its_commas_first() -> None:
    text = (
        "Okay so I had a look at your account this morning with my supervisor, and the"
        " charge on the fifth of May is a duplicate that we will reverse,"
        " but the one on the sixth is real and it stays."
    )
    assert len(text.split()) > MAX_WORDS
    assert sentences(text) == [
        "Okay so I had a look at your account this morning with my supervisor,",
        "and the charge on the fifth of May is a duplicate that we will reverse,",
        "but the one on the sixth is real and it stays.",
    ]
    # short sentences keep their commas: "While that fee can't be waived, here's ..."
    assert sentences("While that fee can't be waived, here's what I can do.") == [
        "While that fee can't be waived, here's what I can do."
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can't hear you very well.", True),
        ("Sorry, you're breaking up.", True),
        ("Hello, can you hear me?", True),
        ("The line's really bad.", True),
        ("Are you still there?", True),
        ("I can't help you with that.", False),
        ("I can't understand why you charged me twice.", False),
        ("I can hear you now.", False),
    ],
)
def test_line_problems(text: str, expected: bool) -> None:
    assert line_problem(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Right.", True),
        ("Sure.", True),
        ("Mm-hmm.", True),
        ("Oh, okay.", True),
        ("Right, okay, got it.", True),
        ("Yes, of course.", True),
        ("Fine.", False),  # may be dismissive: the head judges it
        ("Whatever.", False),
        ("Right, I can't do that.", False),
        ("Sure, calm down.", False),
        ("Right now I can't.", False),
        ("Okay so you need to reboot it.", False),
    ],
)
def test_bare_acknowledgements(text: str, expected: bool) -> None:
    assert bare_acknowledgement(text) is expected


def test_courtesy_answers_thanks_or_an_apology_only() -> None:
    assert answers_courtesy("Thank you so much!", "No problem at all.")
    assert answers_courtesy("Sorry to keep you waiting.", "Not a problem, take your time.")
    assert answers_courtesy("I really appreciate it.", "Don't mention it.")
    assert not answers_courtesy("Can you waive the fee?", "No problem at all.")
    assert not answers_courtesy(None, "No worries.")
    assert not answers_courtesy("Thanks.", "I can't do that.")


OFFER = "Is there anything else I can help you with today?"


@pytest.mark.parametrize(
    ("previous", "text", "expected"),
    [
        (OFFER, "No, that is all.", True),
        (OFFER, "No. That is all. Thanks.", True),
        (OFFER, "Nope, I'm all set, thanks.", True),
        (OFFER, "No thank you, that will be all, have a good day.", True),
        (OFFER, "I think that's everything for now.", True),
        (OFFER, "Yes, that’s all, thanks for your help!", True),
        (OFFER, "Alright, thank you, have a good day.", True),
        ("Is there anything more I can do?", "No, nothing else.", True),
        ("Will that be all?", "Yep, that's it, bye.", True),
        ("What else can I do for you today?", "That should do it, cheers.", True),
        # a question, an emphatic no, or more than closing words: the head judges it
        (OFFER, "That's it? I'm done.", False),
        (OFFER, "No. No. No.", False),
        (OFFER, "No, that's all. " * 20, False),
        # closing words plus a complaint: the head judges it
        (OFFER, "No, that is all, and frankly this was a waste of my afternoon.", False),
        (OFFER, "No. This is useless.", False),
        (OFFER, "No, I'm done with you people.", False),
        (OFFER, "No, you've done enough.", False),
        # no offer of more help before it, or one that says what can't be done
        ("Can you waive the fee?", "No, that is all.", False),
        ("There's nothing more I can do for you.", "No, that is all.", False),
        ("I can't do anything else for you.", "Okay, bye.", False),
        ("We don't offer that anymore.", "No, that is all.", False),
        (None, "No, that is all.", False),
    ],
)
def test_a_closing_answer_to_an_offer_of_more_help(
    previous: str | None, text: str, expected: bool
) -> None:
    assert closes_call(previous, text) is expected


def test_what_context_excuses_depends_on_who_speaks() -> None:
    assert excused("customer", OFFER, "No, that is all.")
    # the agent's "No, that's it." to the customer's request is a refusal: judged
    assert not excused("agent", "Can you do anything else for me?", "No, that's it.")
    assert excused("agent", None, "Right.") and not excused("customer", None, "Fine.")
    for speaker in ("agent", "customer"):
        assert excused(speaker, None, "Sorry, you're breaking up.")
        assert excused(speaker, "Thanks so much!", "No worries at all.")


def test_the_previous_turn_is_the_other_speakers_last_one_just_before() -> None:
    turns = PreviousTurns()
    turns.add("customer", 0.0, 2.0, "Hello?")
    turns.add("agent", 2.5, 4.0, "Hi, how can I help?")
    turns.add("customer", 4.5, 6.0, "Thanks so much for earlier.")
    assert turns.before("agent", 6.5) == "Thanks so much for earlier."
    assert turns.before("customer", 4.5) == "Hi, how can I help?"
    assert turns.before("agent", 60.0) is None  # too long ago
    assert turns.before("agent", 0.5) is None  # nothing of the customer's ended yet


def test_one_negative_sentence_among_neutral_ones_fires_and_is_quoted() -> None:
    """The issue's call: three sentences, the middle one negative; the quote and its media
    time are the middle sentence's phrase, not the first sentence's "I can't"."""
    said = transcript("agent", ISSUE, 10.0, 17.6)
    scores = utterance(
        agent_scores(ISSUE, 0.41),
        [
            agent_scores("I can't see any double charge here.", 0.34),
            agent_scores("That's not something I can change.", 0.94, "cant_wont"),
            agent_scores("It's how it policy.", 0.2, "policy"),
        ],
    )
    (finding,) = NegativePhrasingDetector(NegativePhrasingConfig()).on_scores(said, scores)
    assert finding.measured == 0.94
    start = ISSUE.index("That's")
    assert ISSUE.index(finding.details["quote"]) >= start
    assert finding.details["text"] == ISSUE
    # the quote's media time lies in the second sentence's words
    words = ISSUE.split()
    first = 7  # words of the first sentence
    step = 7.6 / len(words)
    assert finding.span_start_s >= 10.0 + first * step - 1e-3  # word times: ms


# Field case F10's echoed monologue as Whisper heard it on one CPU: no sentence says
# anything negative, the whole scored 0.557 for "policy" against the threshold 0.54.
MISHEARD = (
    "to do grammar and charge. So there are no surprising, the contract term may not well"
    " month. The router and the living included and if it breaks."
)


@pytest.mark.parametrize(
    ("whole", "flagged"),
    [
        (0.56, False),  # several sentences, nothing of "policy" to quote: no nudge
        (0.89, False),
        (0.90, True),  # ... unless the whole is very sure (STRONG_SCORE)
    ],
)
def test_several_sentences_firing_only_together_need_a_phrase_to_quote(
    whole: float, flagged: bool
) -> None:
    parts = [agent_scores(text, 0.3, "policy") for text in sentences(MISHEARD)]
    scores = utterance(agent_scores(MISHEARD, whole, "policy"), parts)
    assert (decide_utterance(scores, 0.54) is not None) is flagged


def test_several_sentences_firing_together_with_the_phrase_in_them_fire() -> None:
    text = "Let me look at the account. It's our policy, the fee stays on the bill."
    parts = [agent_scores(t, 0.5, "policy") for t in sentences(text)]
    fired = decide_utterance(utterance(agent_scores(text, 0.6, "policy"), parts), 0.54)
    assert fired is not None and fired[1].category == "policy"


def test_the_strongest_firing_sentence_wins() -> None:
    text = "I can't refund that today. It's our company policy."
    scores = utterance(
        agent_scores(text, 0.7),
        [
            agent_scores("I can't refund that today.", 0.7),
            agent_scores("It's our company policy.", 0.95, "policy"),
        ],
    )
    fired = decide_utterance(scores, 0.5)
    assert fired is not None
    sentence, decision = fired
    assert (sentence.text, decision.category) == ("It's our company policy.", "policy")
    assert decide_utterance(scores, 0.96) is None
    # below SENTENCE_ALONE a sentence does not fire alone; the whole utterance may
    quiet = utterance(
        agent_scores(text, 0.3),
        [
            agent_scores("I can't refund that today.", 0.85),
            agent_scores("It's our company policy.", 0.2),
        ],
    )
    assert decide_utterance(quiet, 0.5) is None
    loud = dataclasses.replace(quiet, phrasing=agent_scores(text, 0.6).phrasing)
    fired = decide_utterance(loud, 0.5)
    assert fired is not None and fired[0] is loud


def test_no_problem_answering_thanks_is_not_negative_phrasing() -> None:
    detector = NegativePhrasingDetector(NegativePhrasingConfig())
    thanks = transcript("customer", "Thank you so much for sorting that.", 0.0, 2.0)
    detector.on_final(thanks, 2.0)
    reply = transcript("agent", "No problem at all.", 2.4, 3.4)
    scores = agent_scores("No problem at all.", 0.95, "dismissive")
    assert detector.on_scores(reply, scores) == []
    # the same words answering a request do fire (the model's score decides)
    other = NegativePhrasingDetector(NegativePhrasingConfig())
    other.on_final(transcript("customer", "Can you waive the fee?", 0.0, 2.0), 2.0)
    assert len(other.on_scores(reply, scores)) == 1


def test_a_line_problem_is_neither_negative_phrasing_nor_frustration() -> None:
    agent = NegativePhrasingDetector(NegativePhrasingConfig())
    said = transcript("agent", "I can't hear you, you're breaking up.", 0.0, 2.0)
    assert agent.on_scores(said, agent_scores(said.text, 0.9)) == []
    customer = CustomerFrustrationDetector(CustomerFrustrationConfig())
    heard = transcript("customer", "I can't hear you at all.", 3.0, 4.0)
    assert customer.on_scores(heard, customer_scores(heard.text, 0.9)) == []


def test_a_frustrated_sentence_is_quoted_alone() -> None:
    text = (
        "Okay, I see that now. This is the third time I've called about it. My number is four two."
    )
    scores = utterance(
        customer_scores(text, 0.3),
        [
            customer_scores("Okay, I see that now.", 0.1),
            customer_scores("This is the third time I've called about it.", 0.93),
            customer_scores("My number is four two.", 0.05),
        ],
    )
    said = transcript("customer", text, 5.0, 9.0)
    (finding,) = CustomerFrustrationDetector(CustomerFrustrationConfig()).on_scores(said, scores)
    assert finding.details["quote"] == "This is the third time I've called about it."
    assert finding.measured == 0.93
    # the utterance as a whole fires: its most frustrated sentence is quoted
    whole = dataclasses.replace(scores, frustration=0.6)
    (finding,) = CustomerFrustrationDetector(CustomerFrustrationConfig()).on_scores(said, whole)
    assert finding.details["quote"] == "This is the third time I've called about it."
    assert finding.measured == 0.93


def test_an_excused_sentence_is_never_quoted() -> None:
    """The whole utterance fires; the closing answer, excused by the agent's offer, scores
    highest of its sentences but the quote is the complaint."""
    text = "The app crashed again today but whatever. No, that is all."
    scores = utterance(
        customer_scores(text, 0.5),
        [
            customer_scores("The app crashed again today but whatever.", 0.4),
            customer_scores("No, that is all.", 0.6),
        ],
    )
    detector = CustomerFrustrationDetector(CustomerFrustrationConfig())
    detector.on_final(transcript("agent", OFFER, 0.0, 2.0), 2.0)
    said = transcript("customer", text, 2.5, 6.0)
    detector.on_final(said, 3.5)
    (finding,) = detector.on_scores(said, scores)
    assert finding.details["quote"] == "The app crashed again today but whatever."
