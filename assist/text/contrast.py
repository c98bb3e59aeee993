"""Sarcasm as contrast: praise said about a bad situation ("Oh great, on hold again").

Sarcastic complaints mostly pair a positive word with a negative situation (Riloff et al.
2013, "Sarcasm as Contrast between a Positive Sentiment and Negative Situation", EMNLP).
The text heads are linear: the hashed n-grams and the embedding can say "great" and "on
hold again" each nudge the score, but not that the two *together* mean the opposite of
"great" alone. ``contrast_features`` gives the heads that conjunction as three binary
features:

* a positive word anywhere and a negative situation ("Really great service, charging me
  three times.");
* a sentence that *opens* with praise (after "oh", "wow", "yeah", fillers) about a
  negative situation ("Perfect, so now I start from scratch.");
* one that opens with praise and has no negative situation ("Wonderful, the refund is
  there."): the sincere reading, which the training lines of the other two taught the
  heads to doubt.

On the frustration training lines (2026-12-04) praise opening a sentence about a negative
situation was frustrated 63 times in 67, praise opening one without 29 times in 128. With
the three features beside the others, cross-validated F1 rose 0.888 -> 0.891 for
frustration and stayed 0.903 for negative phrasing (docs/text-models-log.md, "Sarcasm as
contrast", has the held-out sets). English regular expressions, case-insensitive, written for both
punctuated text and Whisper's unpunctuated lower case; pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

CONTRAST_DIM = 3
CONTRAST_SCALE = 0.5  # each feature's value when present; chosen by cross-validated F1

_PRAISE = (
    r"great|perfect|wonderful|fantastic|brilliant|lovely|awesome|amazing|excellent|"
    r"marvell?ous|terrific|superb|fabulous|outstanding|splendid|delightful|super|nice|cool|"
    r"sweet|love|loving|loved|thanks?(?: you)?(?: so much| a lot| a million| a bunch)?|"
    r"appreciated?|glad|happy|thrilled|delighted|impressive|impressed|"
    r"(?:just|exactly) what i (?:needed|wanted)|how (?:nice|kind|lovely|thoughtful|helpful)|"
    r"good (?:job|one|stuff)|oh good|best|helpful|fun|exciting|my favou?rite|can'?t wait|"
    r"take (?:all )?(?:the|your) time|no rush|sure|yeah right|of course|wow|"
    r"congratulations|genius|clever|convenient|worth (?:it|every)"
)
_POSITIVE = re.compile(rf"\b(?:{_PRAISE})\b", re.I)
_OPENS_WITH_PRAISE = re.compile(
    rf"^\W*(?:(?:oh|wow|well|yeah|um|uh|ah|and|so)[\s,]+)*(?:{_PRAISE})\b", re.I
)
# What goes wrong on a service call: waiting, repeating, transfers, breakage, money taken,
# the same answer again. Not a sentiment list: "again" or "last week" is neutral alone.
# Only whether one alternative matches counts, so none repeats another ("again" covers
# "yet again", "wait" covers "still waiting").
_NEGATIVE_SITUATION = re.compile(
    r"\b(?:wait(?:ing|ed)?|on hold|again|another|"
    r"(?:second|third|fourth|fifth|sixth|tenth|hundredth|\d+(?:st|nd|rd|th)) "
    r"(?:time|agent|person|call|attempt|transfer|department|day|week)|"
    r"hours?|all (?:day|week|morning)|weeks|months|transferr?(?:ed|ing)?|disconnected|"
    r"cut off|hung up|broken|crash(?:ed|ing)?|not working|doesn'?t (?:work|exist)|"
    r"didn'?t work|won'?t work|never (?:arrived|came|showed|works?)|"
    r"still (?:not|hasn'?t|haven'?t|no|processing)|nobody|no one|for nothing|"
    r"charged twice|double[- ]charged|overcharged|charging me|late|delayed|lost|loses|"
    r"missing|useless|explain(?:ing)? (?:it |this |that )?to every|"
    r"not like i (?:have|had|need|got)|only (?:got|trying)|nothing better to do|"
    r"my own time|waste|wasted|wasting|error|glitch|outage|declined|rejected|denied|expired|"
    r"voicemail|queue|chatbot|robot|mistake|wrong|as (?:usual|always)|for once|finally|"
    r"last (?:time|week|month)|the same|from scratch|start over|"
    r"(?:i'?ll|i will|i guess i'?ll|so i'?ll) just|so (?:now )?i (?:have|get|'?m|am)|so now|"
    r"every (?:single )?(?:time|month|person)|(?:three|four|five|ten|\d+) times)\b"
    # a closing "Not." turns what came before around ("Really helpful. Not.")
    r"|\bnot\W*$",
    re.I,
)


def contrast_of(text: str) -> tuple[bool, bool, bool]:
    """(praise and a negative situation, opens with praise and has one, opens with praise
    and has none) for one sentence."""
    negative = bool(_NEGATIVE_SITUATION.search(text))
    opens = bool(_OPENS_WITH_PRAISE.search(text))
    return bool(_POSITIVE.search(text)) and negative, opens and negative, opens and not negative


def contrast_features(texts: Sequence[str]) -> np.ndarray:
    """``contrast_of`` each text as float32 [n, CONTRAST_DIM], each present feature
    ``CONTRAST_SCALE``, absent 0."""
    out = np.array([contrast_of(text) for text in texts], dtype=np.float32)
    return out.reshape(len(texts), CONTRAST_DIM) * np.float32(CONTRAST_SCALE)
