"""Live-call assist: real-time soft-skill cues for contact-center calls."""

__version__ = "0.1.0"
