"""Text cues: what was said, judged by small ONNX heads on sentence embeddings."""
