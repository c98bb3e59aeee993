"""Negative-phrasing categories: the words that carry each one, and the positive rewrite.

The classifier decides *whether* an agent's sentence is negative phrasing and which
category it is; this module finds the phrase that carries it (the span the agent sees
quoted) and rewrites the sentence so it keeps its meaning but leads with what can be
done ("I can't refund that" -> "While I'm not able to refund that, what I can do is
..."). Every flagged line gets a rewrite: when no phrase of the category is found, the
category's general advice is the suggestion and the whole sentence is the span.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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

CATEGORY_LABELS = {
    "cant_wont": "can't / won't",
    "policy": "policy",
    "blame": "blame",
    "not_my_job": "not my job",
    "you_have_to": "you have to",
    "dont_know": "don't know",
    "dismissive": "dismissive",
    "repetition": "repetition",
}

# Used when the category's phrase isn't found in the sentence.
GENERAL_ADVICE = {
    "cant_wont": 'Lead with what you can do: "What I can do is ..."',
    "policy": 'Give the reason, not the rule: "The reason we do this is ..., and what I can'
    ' do is ..."',
    "blame": 'Take it on together: "Let\'s look at what happened and get it fixed."',
    "not_my_job": "Own the handover: \"The team that handles this is ..., I'll connect you and"
    ' pass on your details."',
    "you_have_to": 'Invite, don\'t order: "The next step is to ..." or "Could you please ..."',
    "dont_know": 'Offer to find out: "Let me find that out for you."',
    "dismissive": "Acknowledge the feeling: \"I can hear how much this matters, let's sort it"
    ' out together."',
    "repetition": 'Say it a new way: "Let me put it another way: ..."',
}

_CLAUSE_END = re.compile(r"[.!?;]|,\s*(?:but|so|and)\b|\s+but\b")


@dataclass(frozen=True, slots=True)
class Rewrite:
    span: tuple[int, int]  # characters of the text that carry the negative phrasing
    suggestion: str


def _rest_of_clause(text: str, start: int) -> str:
    """The words after ``start`` up to the end of their clause, without trailing commas."""
    match = _CLAUSE_END.search(text, start)
    end = match.start() if match else len(text)
    return text[start:end].strip(" ,")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _replace(text: str, match: re.Match[str], replacement: str) -> str:
    before, after = text[: match.start()], text[match.end() :]
    if not before.strip():  # the phrase opened the sentence
        after = after.lstrip(" ,")
        return _sentence(f"{replacement} {after}" if after else replacement)
    return _sentence(f"{before.rstrip()} {replacement} {after.lstrip(' ,')}".strip())


# ----------------------------------------------------------------- per category

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


def _cant_wont(text: str) -> Rewrite | None:
    if m := _CANT_NOTHING.search(text):
        return Rewrite(m.span(), "Here's what I can do: ...")
    if m := _CANT.search(text):
        action = _rest_of_clause(text, m.end())
        before = text[: m.start()].strip(" ,")
        lead = f"{before}, while" if before else "While"
        if action:
            return Rewrite(
                m.span(), _sentence(f"{lead} I'm not able to {action}, what I can do is ...")
            )
        return Rewrite(m.span(), "What I can do is ...")
    if m := _CANT_IMPOSSIBLE.search(text):
        return Rewrite(m.span(), "What is possible is ... let me walk you through it.")
    return None


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


def _you_have_to(text: str) -> Rewrite | None:
    if m := _YOU_HAVE_TO.search(text):
        return Rewrite(m.span(), _replace(text, m, "the next step is to"))
    return None


_DONT_KNOW = re.compile(
    r"\b(?:i (?:don'?t|do not) know|(?:i have |i've got )?no idea|(?:i'?m|i am) not sure|"
    r"beats me|i couldn'?t tell you|who knows|i have no clue|no clue)\b",
    re.I,
)


def _dont_know(text: str) -> Rewrite | None:
    if m := _DONT_KNOW.search(text):
        rest = _rest_of_clause(text, m.end())
        if rest and not rest.lower().startswith(("what to", "anything", "about")):
            return Rewrite(m.span(), _sentence(f"Let me find out {rest} for you"))
        return Rewrite(m.span(), "Let me find that out for you.")
    return None


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


def _repetition(text: str) -> Rewrite | None:
    if m := _REPETITION.search(text):
        rest = text[m.end() :].strip(" ,.")
        if len(rest.split()) >= 3:
            return Rewrite(m.span(), _sentence(f"To recap, {rest}"))
        return Rewrite(m.span(), "Let me put it another way: ...")
    return None


def _fixed(pattern: re.Pattern[str], suggestion: str) -> Callable[[str], Rewrite | None]:
    """A category whose rewrite is the same sentence whatever the phrase."""

    def find(text: str) -> Rewrite | None:
        m = pattern.search(text)
        return Rewrite(m.span(), suggestion) if m else None

    return find


_REWRITERS: dict[str, Callable[[str], Rewrite | None]] = {
    "cant_wont": _cant_wont,
    "policy": _fixed(
        _POLICY, "The reason we do it this way is ... and what I can do for you is ..."
    ),
    "blame": _fixed(_BLAME, "Let's look at what happened together and get it fixed."),
    "not_my_job": _fixed(
        _NOT_MY_JOB,
        "The team that handles this is ... I'll connect you and pass on your details so"
        " you don't have to repeat yourself.",
    ),
    "you_have_to": _you_have_to,
    "dont_know": _dont_know,
    "dismissive": _fixed(
        _DISMISSIVE, "I can hear how much this matters to you, let's sort it out together."
    ),
    "repetition": _repetition,
}


# Idioms that sound like refusals to a model but are good news ("there's no charge",
# "I can't wait to help"). A sentence with one of them and no phrase of its category is
# not negative phrasing, unless the model is very sure.
_BENIGN = re.compile(
    r"\b(?:no (?:extra |additional |hidden |cancellation |late )?(?:charge|fee|cost|penalty|"
    r"problem|worries|rush|trouble|limit)s?|free of charge|can'?t (?:wait|thank|believe how)|"
    r"won'?t (?:be charged|charge you|cost you)|nothing to (?:worry|pay)|not a problem)\b",
    re.I,
)


def benign_idiom(text: str) -> bool:
    return _BENIGN.search(text) is not None


def rewrite(text: str, category: str) -> Rewrite:
    """The span and the positive rewrite of a sentence flagged as ``category``."""
    found = _REWRITERS[category](text)
    if found is not None:
        return found
    return Rewrite((0, len(text)), GENERAL_ADVICE[category])
