"""Negative-phrasing categories and the words that carry each one.

The negative-phrasing model scores a sentence; ``assist/detectors/negative_phrasing.py``
decides. This module finds the phrase that carries a category in a sentence (the span the
agent sees quoted, and the form of it that the rewrite in ``assist.nudges`` builds on),
and the benign idioms ("there's no charge", "I can't wait to help") that sound like
refusals but are good news. English, case-insensitive regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = (
    "cant_wont",
    "policy",
    "blame",
    "not_my_job",
    "you_have_to",
    "dont_know",
    "dismissive",
    "repetition",
)


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    """Where a category's phrase is in a sentence, and which form of it was said."""

    span: tuple[int, int]  # characters of the sentence carrying the negative phrasing
    form: str  # the pattern that matched, e.g. "cant", "nothing_i_can_do", "phrase"


_CANT = re.compile(
    r"\b(?:i|we)\s*(?:won'?t be able to|will not be able to|wouldn'?t be able to|"
    r"(?:'?ll|will) not be able to|can'?t|cannot|can not|won'?t|will not|am unable to|'m unable to|"
    r"are unable to|'m not able to|am not able to|are not able to|aren'?t able to|"
    r"'re not able to|'re unable to|couldn'?t)\b",
    re.I,
)
_CANT_NOTHING = re.compile(r"\b(?:there'?s|there is) nothing (?:else )?(?:i|we) can do\b", re.I)
_CANT_IMPOSSIBLE = re.compile(
    r"\b(?:that'?s|that is|it'?s|it is|this is)\s+(?:just\s+)?(?:not possible|impossible|"
    r"not going to happen|not happening|a no)\b|\bno way\b",
    re.I,
)


_POLICY = re.compile(
    r"\b(?:(?:it'?s|that'?s|this is|it is|that is)\s+(?:just\s+)?(?:our|the|company|"
    r"a company|store|bank)\s+polic(?:y|ies)|(?:our|company|the|store|bank)\s+polic(?:y|ies)"
    r"\s+(?:doesn'?t|does not|don'?t|won'?t|says|states|is)|according to (?:our |the )?"
    r"polic(?:y|ies)|rules are rules|(?:the )?system (?:won'?t|doesn'?t|does not|can'?t|"
    r"will not) (?:let|allow)|(?:that'?s|it'?s) (?:just )?how (?:we do (?:it|things)|it works|"
    r"things are)|(?:i|we) don'?t make the rules|(?:it'?s|that'?s) (?:against|not in) "
    r"(?:our |the )?(?:policy|rules))\b",
    re.I,
)

_BLAME = re.compile(
    r"\b(?:you should(?:n'?t| not)? have|you (?:must|might|probably) have|you didn'?t|"
    r"you did not|you forgot|you never|if you had|if you'?d|(?:that'?s|it'?s|this is) "
    r"(?:your|on you|on your end)|your (?:fault|mistake|problem|error)|"
    r"(?:they|the other (?:department|team)|\w+ (?:department|team)) (?:messed|screwed|"
    r"mixed) (?:it|this|that) up)",
    re.I,
)

_NOT_MY_JOB = re.compile(
    r"\b(?:not my (?:department|job|area|problem|responsibility|team|call)|"
    r"(?:i|we) (?:don'?t|do not) (?:handle|deal with|do|cover|look after) (?:that|those|this|"
    r"these|it)|you'?ll (?:have|need) to (?:call|contact|talk to|ask|take it up with|email)|"
    r"(?:that'?s|it'?s) (?:a|an|the) [\w ]{0,20}(?:department|team)'?s? (?:issue|problem|"
    r"thing|job)|(?:nothing|not anything) to do with (?:me|us))",
    re.I,
)

_YOU_HAVE_TO = re.compile(
    r"\byou(?:'ll| will)? (?:have to|need to|must|got to|'ve got to|have got to|gotta|"
    r"are required to|'re required to)\b",
    re.I,
)

_DONT_KNOW = re.compile(
    r"\b(?:i (?:don'?t|do not) know|(?:i have |i've got )?no idea|(?:i'?m|i am) not sure|"
    r"beats me|i couldn'?t tell you|who knows|i have no clue|no clue)\b",
    re.I,
)

_DISMISSIVE = re.compile(
    r"\b(?:calm down|relax|settle down|(?:it'?s|that'?s|this is) not (?:a|that) big (?:a )?"
    r"deal|no big deal|you'?re overreacting|you are overreacting|whatever|no need to "
    r"(?:shout|yell|get upset|get worked up)|i'?ve heard (?:this|that|it) (?:before|all before)|"
    r"(?:it'?s|that'?s) not (?:the end of the world|a real problem)|don'?t be (?:so )?"
    r"(?:dramatic|upset))\b",
    re.I,
)

_REPETITION = re.compile(
    r"(?:\b(?:as|like) i (?:already |just |have |'ve )?(?:said|told you|mentioned|explained|"
    r"stated)(?: (?:before|earlier|already|twice))?|\bi(?:'ve| have) (?:already )?(?:told you|"
    r"explained (?:this|that|it)|said (?:this|that|it))(?: \w+ times| twice| before| already)?|"
    r"\bfor the (?:\w+ )?(?:last|third|second|fourth|fifth|hundredth) time|^\s*again,)",
    re.I,
)

# Idioms that sound like refusals to a model but are good news ("there's no charge",
# "I can't wait to help"). A sentence with one of them and no phrase of its category is
# not negative phrasing, unless the model is very sure.
_BENIGN = re.compile(
    r"\b(?:no (?:extra |additional |hidden |cancellation |late )?(?:charge|fee|cost|penalty|"
    r"problem|worries|rush|trouble|limit)s?|free of charge|can'?t (?:wait|thank|believe how)|"
    r"won'?t (?:be charged|charge you|cost you)|nothing to (?:worry|pay)|not a problem)\b",
    re.I,
)


# Per category, in order of preference: (form, pattern).
_FORMS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "cant_wont": (
        ("nothing_i_can_do", _CANT_NOTHING),
        ("cant", _CANT),
        ("impossible", _CANT_IMPOSSIBLE),
    ),
    "policy": (("phrase", _POLICY),),
    "blame": (("phrase", _BLAME),),
    "not_my_job": (("phrase", _NOT_MY_JOB),),
    "you_have_to": (("phrase", _YOU_HAVE_TO),),
    "dont_know": (("phrase", _DONT_KNOW),),
    "dismissive": (("phrase", _DISMISSIVE),),
    "repetition": (("phrase", _REPETITION),),
}


def find_phrase(text: str, category: str) -> PhraseMatch | None:
    """The first phrase of ``category`` in ``text``; None when the sentence has none.

    Raises ``KeyError`` for a category not in ``CATEGORIES``.
    """
    for form, pattern in _FORMS[category]:
        if m := pattern.search(text):
            return PhraseMatch(m.span(), form)
    return None


def benign_idiom(text: str) -> bool:
    """Whether ``text`` holds a good-news idiom that only sounds like a refusal."""
    return _BENIGN.search(text) is not None
