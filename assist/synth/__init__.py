"""Synthesized test calls: a script of who says what when, rendered to stereo audio.

Voices come from espeak-ng, hold music from Debian's ``asterisk-moh-opsound-wav``; the
line carries a low noise floor like a real phone line. Each call comes with its ground
truth (``truth.py``): the exact speech spans and the moments each cue becomes true, so
tests and benchmarks can check nudges against what really happened. Used by tests,
``bench/`` and to make the bundled demo call; never by the live service.
"""
