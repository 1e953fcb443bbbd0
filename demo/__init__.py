"""Gradio demo of the codec, TTS and ASR (not built yet)."""
