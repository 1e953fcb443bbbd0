"""`CATASRConfig`: sizes of the CAT-ASR model (one decoder-only Transformer over audio frames, then text)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class CATASRConfig(PreTrainedConfig):
    r"""
    Args:
        text_vocab_size: characters of `tts.text.CharTokenizer` (padding, begin and end included).
        num_quantizers: most codebooks per frame the model reads; it transcribes from any 1..num_quantizers.
        codebook_size: entries per codebook of the codec whose tokens it reads.
        hidden_size / num_layers / num_heads / intermediate_size: the Transformer (one position per audio frame
            and per text character).
        progressive_dropout: probability that a training item keeps only its first K codebooks (K uniform in
            1..num_quantizers), so that any K can be transcribed.
        time_mask_count / time_mask_max_frames: SpecAugment-like time masks per training item: that many spans
            of 0..time_mask_max_frames frames whose embedding is replaced by a learned mask embedding.
        level_mask_prob: probability that a training frame loses its finer codebooks (keeps a random coarser
            prefix of at least one), the counterpart of SpecAugment's frequency masks.
        ctc_weight: weight of an auxiliary CTC loss on the audio positions (0: no CTC head). Joint CTC/attention
            training (Watanabe et al., 2017) teaches the decoder to read the frames in order much sooner.
        ctc_upsample: positions per frame the CTC head emits (12.5 frames/s is below speech's ~15 characters/s).
        audio_encoder_layers: bidirectional Transformer layers over the frames alone before the decoder (0: none,
            the frames go straight into the causal decoder). Each frame's state then sees the frames after it too,
            as a phone's identity often needs; the CTC head reads these states when they exist.
        max_positions: longest audio + text sequence (12.5 frames per second of audio, one position per character).
        codec_name: the codec whose tokens this model reads (a preset name or folder).
        codec_weights_id: the weights id of that codec's encoder and quantizer when the training codes were made
            (`catcodec info`; recorded by the training task from the codes files); "" = not recorded, not checked.
    """

    model_type = "cat-asr"

    text_vocab_size: int = 38
    num_quantizers: int = 8
    codebook_size: int = 1024
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 6
    intermediate_size: int = 1536
    progressive_dropout: float = 0.5
    time_mask_count: int = 2
    time_mask_max_frames: int = 4
    level_mask_prob: float = 0.1
    ctc_weight: float = 0.0
    ctc_upsample: int = 3
    audio_encoder_layers: int = 0
    max_positions: int = 2048
    codec_name: str = "cat-small-16k"
    codec_weights_id: str = ""
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_quantizers < 1:
            raise ValueError(f"CATASRConfig.num_quantizers must be >= 1, got {self.num_quantizers}")
        for name in ("progressive_dropout", "level_mask_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"CATASRConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.ctc_weight < 0 or self.ctc_upsample < 1:
            raise ValueError("CATASRConfig.ctc_weight must be >= 0 and ctc_upsample >= 1")
        if self.audio_encoder_layers < 0:
            raise ValueError(f"CATASRConfig.audio_encoder_layers must be >= 0, got {self.audio_encoder_layers}")
        if self.time_mask_count < 0 or self.time_mask_max_frames < 0:
            raise ValueError("CATASRConfig.time_mask_count and time_mask_max_frames must be >= 0")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"CATASRConfig.hidden_size {self.hidden_size} must split into num_heads {self.num_heads} even heads")


__all__ = ["CATASRConfig"]
