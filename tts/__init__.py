"""CAT-TTS: autoregressive text-to-speech on CAT tokens: text front-end, model, frame generation, training task,
pipeline (`tts.pipeline.TTSPipeline`) and command line (`catcodec-tts`)."""
