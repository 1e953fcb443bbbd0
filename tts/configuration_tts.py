"""`CATTTSConfig`: sizes of the CAT-TTS model (temporal Transformer over frames + depth Transformer over codebooks)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .text import TEXT_FRONTENDS


@strict
class CATTTSConfig(PreTrainedConfig):
    r"""
    Args:
        text_vocab_size: symbols of the text tokenizer (padding, begin and end included).
        text_frontend: what the text becomes: "characters" (`tts.text.CharTokenizer`, nothing to install) or
            "phonemes" (`tts.text.PhonemeTokenizer`: espeak-ng's IPA, which must then be installed wherever the
            model trains or speaks).
        num_quantizers: most codebooks per frame the model predicts; it synthesises at any 1..num_quantizers.
        codebook_size: entries per codebook of the codec whose tokens it models.
        hidden_size / num_layers / num_heads / intermediate_size: the temporal Transformer (one position per
            text character and per audio frame).
        depth_hidden_size / depth_num_layers / depth_num_heads / depth_intermediate_size: the depth
            Transformer that predicts one frame's codebooks coarse to fine.
        progressive_dropout: probability that a training item keeps only its first K codebooks (K uniform in
            1..num_quantizers) in input and loss, so that any K can be synthesised.
        frame_dropout: probability that a training frame's input (all its codebooks) is replaced by zeros
            while its targets stay: the model must then take what it says from the text, not from the frames
            before (Tacotron's pre-net dropout serves the same end). 0 = off; never applied in generation.
        max_positions: longest text + audio sequence (12.5 frames per second of audio).
        codec_name: the codec whose tokens this model reads and writes (a preset name or folder).
        codec_weights_id: the weights id of that codec's encoder and quantizer when the training codes were made
            (`catcodec info`; recorded by the training task from the codes files); "" = not recorded, not checked.
        guided_attention_weight: weight of the guided attention loss (`tts.alignment`): frames' attention to the
            text is pushed towards the diagonal while training; 0 = off (attention runs in the faster kernel).
        guided_attention_sigma: width of that diagonal, as a share of the text and audio lengths.
        guided_attention_heads: how many heads of each layer (the first ones) are guided; 0 = all. The others
            stay free to look anywhere (the end of the sentence, for its intonation).
        aligned_positions: space the text's rotary positions at the speaking rate (character n at n /
            chars_per_frame, the start of audio at 0, frame t at t + 1), so that each frame sits at the position
            of the characters it speaks and "look where you are" is a fixed relative position for attention;
            False = one position after another, text then audio.
        chars_per_frame: the speaking rate used for those positions when no voice prompt with a transcript
            gives one (a prompt's own characters per frame are used when it has one).
        rate_jitter: in training, each item's rate (its own characters per frame) is scaled by exp(rate_jitter
            x N(0, 1)), so the model learns to correct the position from what it hears and reads, as it must
            when the rate at synthesis is only an estimate.
    """

    model_type = "cat-tts"

    text_vocab_size: int = 38
    text_frontend: str = "characters"
    num_quantizers: int = 8
    codebook_size: int = 1024
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 6
    intermediate_size: int = 1536
    depth_hidden_size: int = 256
    depth_num_layers: int = 2
    depth_num_heads: int = 4
    depth_intermediate_size: int = 1024
    progressive_dropout: float = 0.5
    frame_dropout: float = 0.0
    max_positions: int = 2048
    codec_name: str = "cat-small-16k"
    codec_weights_id: str = ""
    initializer_range: float = 0.02
    guided_attention_weight: float = 0.0
    guided_attention_sigma: float = 0.2
    guided_attention_heads: int = 0
    aligned_positions: bool = False
    chars_per_frame: float = 1.15
    rate_jitter: float = 0.15

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.text_frontend not in TEXT_FRONTENDS:
            raise ValueError(f"CATTTSConfig.text_frontend must be one of {', '.join(map(repr, TEXT_FRONTENDS))}, "
                             f"got {self.text_frontend!r}")
        if self.num_quantizers < 1:
            raise ValueError(f"CATTTSConfig.num_quantizers must be >= 1, got {self.num_quantizers}")
        if not 0.0 <= self.progressive_dropout <= 1.0:
            raise ValueError(f"CATTTSConfig.progressive_dropout must be in [0, 1], got {self.progressive_dropout}")
        if not 0.0 <= self.frame_dropout < 1.0:
            raise ValueError(f"CATTTSConfig.frame_dropout must be in [0, 1), got {self.frame_dropout}")
        if self.guided_attention_weight < 0 or self.guided_attention_sigma <= 0:
            raise ValueError("CATTTSConfig.guided_attention_weight must be >= 0 and guided_attention_sigma > 0, got "
                             f"{self.guided_attention_weight} and {self.guided_attention_sigma}")
        if not 0 <= self.guided_attention_heads <= self.num_heads:
            raise ValueError(f"CATTTSConfig.guided_attention_heads must be in 0..num_heads ({self.num_heads}), "
                             f"got {self.guided_attention_heads}")
        if self.chars_per_frame <= 0 or self.rate_jitter < 0:
            raise ValueError(f"CATTTSConfig.chars_per_frame must be > 0 and rate_jitter >= 0, got {self.chars_per_frame} "
                             f"and {self.rate_jitter}")
        for width, heads, name in ((self.hidden_size, self.num_heads, ""), (self.depth_hidden_size, self.depth_num_heads, "depth_")):
            if width % heads or (width // heads) % 2:
                raise ValueError(f"CATTTSConfig.{name}hidden_size {width} must split into {name}num_heads {heads} even heads")

    @property
    def end_of_speech_id(self) -> int:
        """Extra class of the first codebook that means: no more frames."""
        return self.codebook_size


__all__ = ["CATTTSConfig"]
