"""Speech to text: the faster-whisper model, the process-wide pool, utterance segmentation."""
