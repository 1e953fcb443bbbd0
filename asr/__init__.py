"""ASR on CAT tokens (not built yet)."""
