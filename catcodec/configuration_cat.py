"""`CATConfig`: every size and rate of a CAT codec, in the Hugging Face config convention.

The encoder is a list of stages (index 0 runs at the patch rate, each later stage at half the rate of
the one before); the decoder mirrors it. Lists are given in encoder order for both sides.
"""

from __future__ import annotations

import hashlib
import json
import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

PITCH_INPUT_FEATURES = 3  # per patch with `pitch_input`: log-pitch position, voicing, periodicity

# Fields that change what the weights compute; the hash over them identifies which codes a model reads.
_ARCHITECTURE_FIELDS = (
    "sampling_rate",
    "patch_size",
    "merge_factor",
    "stage_dims",
    "stage_layers",
    "stage_heads",
    "stage_output_dims",
    "decoder_stage_dims",
    "decoder_stage_layers",
    "decoder_stage_heads",
    "mlp_ratio",
    "attention_window_seconds",
    "rope_theta",
    "layer_norm_eps",
    "num_quantizers",
    "codebook_size",
    "codebook_dim",
    "quantizer_dim",
)


@strict
class CATConfig(PreTrainedConfig):
    r"""
    Configuration of a [`CATModel`] (Causal Audio Tokenizer with Transformer).

    Defaults give the published reference size (24 kHz, 240-sample patches, 4 stages, 12.5 frames/s,
    32 x 1024 factorized RVQ, about 1.7 B parameters). See `catcodec.presets` for named sizes.

    Args:
        sampling_rate: audio rate in Hz the model reads and writes.
        patch_size: samples per patch; a bias-free Linear maps a patch to the first stage's width.
        merge_factor: neighbouring frames merged ("patch 2") between encoder stages, split in the decoder.
        stage_dims / stage_layers / stage_heads: width, depth and heads of each encoder stage.
        stage_output_dims: width each encoder stage projects to before the merge; the last one is the
            quantizer's input and output width.
        decoder_stage_dims / decoder_stage_layers / decoder_stage_heads: the decoder's own sizes, in
            encoder order; `None` mirrors the encoder.
        mlp_ratio: hidden width of the GELU MLP as a multiple of the stage width.
        layer_scale_init: initial value of the LayerScale vectors of every residual branch.
        attention_window_seconds: causal sliding attention window, in seconds of audio, for every stage.
        rope_theta: RoPE base period.
        num_quantizers: residual VQ layers (the maximum bitrate); any prefix 1..num_quantizers decodes.
        codebook_size / codebook_dim: entries per codebook and the low dimension codes are looked up in.
        quantizer_dim: width of the residual stream inside the quantizer.
        quantizer_dropout: fraction of training items quantized with a random number of layers.
        dead_code_threshold: in training, a code whose share of assignments (moving average) falls below
            this fraction of a fair share (1 / codebook_size) is re-seeded from the batch; 0 disables.
        codebook_usage_decay: decay per training step of that moving average.
        commitment_loss_weight / codebook_loss_weight: weights of the VQ losses in `forward`'s `loss`.
        unit_codes: each quantizer layer outputs its code's unit vector (the bundled weights up to v3) rather than
            the code's entry (DAC's, the default): with unit vectors the layers cannot take the residual's length
            away, so they do not refine a residual (`catcodec.modules.quantizer`).
        initializer_range: std of the truncated-normal init of Linear weights.
        output_head: how the decoder's last stage becomes a waveform: "patch" (the reference: a Linear to
            patch_size samples per token) or "istft" (log-magnitudes and phases of an STFT with a hop of
            one patch, inverse-FFT'd and overlap-added causally; trains faster for small models).
        istft_n_fft: FFT size of the "istft" head, a multiple of patch_size of at least twice it;
            `None` means 4 * patch_size.
        num_harmonics: sinusoids of the harmonic branch added to the main head's output (0: no branch): per
            patch frame a pitch and a voicing (predicted from the quantized latent) and a spectral envelope (from
            the decoder's last stage) drive an oscillator bank (`catcodec.modules.harmonic_head`); helps small
            decoders render voiced speech.
        harmonic_pitch_bins / harmonic_fmin / harmonic_fmax: the pitch classes, log-spaced over fmin..fmax Hz.
        harmonic_envelope_bins: points of the log-amplitude envelope, evenly spaced from 0 Hz to Nyquist.
        pitch_input: the encoder also reads, beside each patch, a causal YIN measurement of its pitch over
            harmonic_fmin..harmonic_fmax (`catcodec.modules.pitch_input`), both at its first stage and through a
            linear skip into its output latent, so that the codes carry the pitch the harmonic branch sings.
    """

    model_type = "cat"

    sampling_rate: int = 24000
    patch_size: int = 240
    merge_factor: int = 2
    stage_dims: list[int] | tuple[int, ...] = (768, 768, 768, 1280)
    stage_layers: list[int] | tuple[int, ...] = (12, 12, 12, 32)
    stage_heads: list[int] | tuple[int, ...] = (12, 12, 12, 20)
    stage_output_dims: list[int] | tuple[int, ...] = (384, 384, 640, 768)
    decoder_stage_dims: list[int] | tuple[int, ...] | None = None
    decoder_stage_layers: list[int] | tuple[int, ...] | None = None
    decoder_stage_heads: list[int] | tuple[int, ...] | None = None
    mlp_ratio: float = 4.0
    layer_scale_init: float = 0.01
    attention_window_seconds: float = 10.0
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5
    num_quantizers: int = 32
    codebook_size: int = 1024
    codebook_dim: int = 8
    quantizer_dim: int = 512
    quantizer_dropout: float = 0.5
    dead_code_threshold: float = 0.01
    codebook_usage_decay: float = 0.98
    commitment_loss_weight: float = 0.25
    codebook_loss_weight: float = 1.0
    unit_codes: bool = False
    initializer_range: float = 0.02
    output_head: str = "patch"
    istft_n_fft: int | None = None
    num_harmonics: int = 0
    harmonic_pitch_bins: int = 64
    harmonic_envelope_bins: int = 128
    harmonic_fmin: float = 50.0
    harmonic_fmax: float = 600.0
    pitch_input: bool = False

    def __post_init__(self, **kwargs):
        for name in ("stage_dims", "stage_layers", "stage_heads", "stage_output_dims"):
            setattr(self, name, [int(v) for v in getattr(self, name)])
        for name, source in (
            ("decoder_stage_dims", "stage_dims"),
            ("decoder_stage_layers", "stage_layers"),
            ("decoder_stage_heads", "stage_heads"),
        ):
            value = getattr(self, name)
            setattr(self, name, [int(v) for v in (getattr(self, source) if value is None else value)])
        super().__post_init__(**kwargs)
        self._check()

    def _check(self) -> None:
        """Refuse inconsistent sizes with a message that says which field to fix."""
        n = len(self.stage_dims)
        for name in (
            "stage_layers",
            "stage_heads",
            "stage_output_dims",
            "decoder_stage_dims",
            "decoder_stage_layers",
            "decoder_stage_heads",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"CATConfig.{name} has {len(getattr(self, name))} entries, stage_dims has {n}")
        for side, prefix in (("encoder", ""), ("decoder", "decoder_")):
            dims, heads = getattr(self, f"{prefix}stage_dims"), getattr(self, f"{prefix}stage_heads")
            for i, (d, h) in enumerate(zip(dims, heads)):
                if h < 1 or d % h or (d // h) % 2:
                    raise ValueError(
                        f"{side} stage {i}: CATConfig.{prefix}stage_dims[{i}] = {d} must split into "
                        f"CATConfig.{prefix}stage_heads[{i}] = {h} heads of even size (RoPE)"
                    )
        if not 1 <= self.num_quantizers <= 64:
            raise ValueError(f"CATConfig.num_quantizers must be in 1..64, got {self.num_quantizers}")
        if self.codebook_size < 2:
            raise ValueError(f"CATConfig.codebook_size must be >= 2, got {self.codebook_size}")
        if self.patch_size < 1 or self.merge_factor < 1:
            raise ValueError("CATConfig.patch_size and merge_factor must be positive")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"CATConfig.quantizer_dropout must be in [0, 1], got {self.quantizer_dropout}")
        if self.output_head not in ("patch", "istft"):
            raise ValueError(f"CATConfig.output_head must be 'patch' or 'istft', got {self.output_head!r}")
        if self.output_head == "istft":
            n_fft = self.istft_window
            if n_fft % self.patch_size or n_fft < 2 * self.patch_size:
                raise ValueError(
                    f"CATConfig.istft_n_fft = {n_fft} must be a multiple of patch_size ({self.patch_size}) "
                    f"and at least twice it"
                )
        if self.num_harmonics < 0:
            raise ValueError(f"CATConfig.num_harmonics must be >= 0, got {self.num_harmonics}")
        if (self.num_harmonics or self.pitch_input) and not 0 < self.harmonic_fmin < self.harmonic_fmax < self.sampling_rate / 2:
            raise ValueError(
                f"CATConfig.harmonic_fmin / harmonic_fmax = {self.harmonic_fmin} / {self.harmonic_fmax} must satisfy "
                f"0 < fmin < fmax < sampling_rate / 2"
            )
        if self.num_harmonics and (self.harmonic_pitch_bins < 2 or self.harmonic_envelope_bins < 2):
            raise ValueError("CATConfig.harmonic_pitch_bins and harmonic_envelope_bins must be >= 2")

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.stage_dims)

    @property
    def hop_length(self) -> int:
        """Samples per code frame: patch_size * merge_factor ** (stages - 1)."""
        return self.patch_size * self.merge_factor ** (self.num_stages - 1)

    @property
    def frame_rate(self) -> float:
        """Code frames per second (12.5 for both presets)."""
        return self.sampling_rate / self.hop_length

    def stage_rate(self, stage: int) -> float:
        """Tokens per second at encoder stage `stage` (0 = patch rate)."""
        return self.sampling_rate / (self.patch_size * self.merge_factor**stage)

    def tokens_per_frame(self, stage: int) -> int:
        """Tokens of stage `stage` that make up one code frame."""
        return self.merge_factor ** (self.num_stages - 1 - stage)

    def window_tokens(self, stage: int) -> int:
        """Attention window of stage `stage` in tokens (the token itself included)."""
        return max(1, int(round(self.attention_window_seconds * self.stage_rate(stage))))

    @property
    def istft_window(self) -> int:
        """FFT size of the "istft" output head."""
        return 4 * self.patch_size if self.istft_n_fft is None else int(self.istft_n_fft)

    @property
    def main_head_dim(self) -> int:
        """Inputs of the main output head: a patch, or log-magnitudes and phases of the STFT."""
        return self.patch_size if self.output_head == "patch" else 2 * (self.istft_window // 2 + 1)

    @property
    def decoder_output_dim(self) -> int:
        """Width the decoder's last stage projects to: the main head's inputs, then the harmonic branch's
        envelope (its pitch and voicing come from a `PitchPredictor` on the quantized latent)."""
        return self.main_head_dim + (self.harmonic_envelope_bins if self.num_harmonics else 0)

    @property
    def encoder_input_dims(self) -> list[int]:
        """Width entering each encoder stage: a patch (and its pitch features), then merged outputs of the stage before."""
        first = self.patch_size + (PITCH_INPUT_FEATURES if self.pitch_input else 0)
        return [first] + [self.merge_factor * d for d in self.stage_output_dims[:-1]]

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    def bitrate(self, num_quantizers: int | None = None) -> float:
        """Bits per second when `num_quantizers` codebooks are kept (125 bps per layer at 12.5 Hz, 1024 codes)."""
        n = self.num_quantizers if num_quantizers is None else num_quantizers
        return self.frame_rate * n * self.bits_per_code

    def architecture_hash(self) -> str:
        """Short hash of the fields that define what codes mean; stored with every codes file."""
        payload = {k: getattr(self, k) for k in _ARCHITECTURE_FIELDS}
        if self.output_head != "patch":  # only when set, so that hashes from before the field stay valid
            payload.update(output_head=self.output_head, istft_n_fft=self.istft_window)
        if self.num_harmonics:
            payload.update(
                num_harmonics=self.num_harmonics,
                harmonic_pitch_bins=self.harmonic_pitch_bins,
                harmonic_envelope_bins=self.harmonic_envelope_bins,
                harmonic_fmin=self.harmonic_fmin,
                harmonic_fmax=self.harmonic_fmax,
            )
        if self.pitch_input:
            payload.update(pitch_input=True, harmonic_fmin=self.harmonic_fmin, harmonic_fmax=self.harmonic_fmax)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


__all__ = ["CATConfig"]
