"""spotscribe transcription worker: SQS → WhisperX / faster-whisper → S3 (run with `python -m worker`)."""
