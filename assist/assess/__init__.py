"""Assess first: recorded calls through the live pipeline, scored, and a team baseline.

``assist assess PATH...`` (``batch.assess``): discovery and pairing (``discover``), decoding
to per-channel PCM at the pipeline's rate (``decode``), agent ids and call dates
(``agents``), the content-hash resume ledger (``ledger``), the worker processes that run
each call through the live service's path with media time as the clock (``worker``), and
the team baseline report (``report``).
"""
