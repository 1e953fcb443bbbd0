"""CAT-TTS: autoregressive text-to-speech on CAT tokens (not built yet)."""
