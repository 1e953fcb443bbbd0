"""Gradio demo of the codec, TTS and ASR on localhost: `catcodec demo` (see demo/README.md)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local demo makes no telemetry calls
