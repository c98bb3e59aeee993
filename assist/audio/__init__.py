"""Audio plumbing: codecs, deinterleaving and streaming resampling (pure, no I/O)."""
