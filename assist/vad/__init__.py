"""Voice activity: the shared Silero ONNX session and per-channel streams and gates."""
