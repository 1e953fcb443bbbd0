"""CAT-ASR: English speech recognition on CAT tokens. A decoder-only Transformer reads a clip's codec frames,
then writes its transcript character by character; model, greedy and beam-search decoding, training task,
`ASRPipeline` and `catcodec-asr` are built (tested on tiny models; no trained ASR weights yet)."""
