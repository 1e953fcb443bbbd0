"""CAT-TTS: autoregressive text-to-speech on CAT tokens. Built so far: text front-end, model, frame generation;
training task, pipeline and CLI come next."""
