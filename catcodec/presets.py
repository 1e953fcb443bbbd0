"""Named model sizes, and where their bundled weights live.

`cat-reference-24k` is the published MOSS-Audio-Tokenizer size (about 1.7 B parameters, for GPU clusters).
`cat-small-16k` is the project's default: same layout and 12.5 frames/s, sized to train and run on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from .configuration_cat import CATConfig

DEFAULT_MODEL = "cat-small-16k"

PRESETS: dict[str, dict] = {
    # 24 kHz, 240-sample patches: 100 -> 50 -> 25 -> 12.5 Hz; 12 + 12 + 12 + 32 layers a side.
    "cat-reference-24k": {},
    # 16 kHz, 160-sample patches: 100 -> 50 -> 25 -> 12.5 Hz; 2 + 2 + 2 + 4 layers a side, about 25.6 M params.
    "cat-small-16k": dict(
        sampling_rate=16000,
        patch_size=160,
        stage_dims=(256, 256, 256, 384),
        stage_layers=(2, 2, 2, 4),
        stage_heads=(4, 4, 4, 6),
        stage_output_dims=(128, 128, 192, 256),
        quantizer_dim=256,
        num_quantizers=32,
        output_head="istft",  # since v1 of the bundled weights; v0 used the reference's linear un-patch
        num_harmonics=80,  # since v2: a harmonic branch beside the iSTFT head (catcodec/modules/harmonic_head.py)
        pitch_input=True,  # since v2: causal pitch features beside each patch, so the codes carry the pitch
        unit_codes=False,  # since v4: DAC's quantizer layers; v0-v3 output unit vectors (their recipes: unit_codes: true)
    ),
}

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def preset_config(name: str, **overrides) -> CATConfig:
    """The `CATConfig` of a preset, with optional field overrides (unknown fields are refused: a misspelt one
    would otherwise be kept as a stray attribute and the preset's value used without a word)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset '{name}'; known: {', '.join(PRESETS)}")
    unknown = set(overrides) - set(CATConfig().to_dict())
    if unknown:
        raise ValueError(f"unknown CATConfig field(s) {', '.join(sorted(unknown))} in the overrides of preset '{name}'")
    return CATConfig(**{**PRESETS[name], **overrides})


def bundled_weights_dir(name: str) -> Path | None:
    """The folder of weights shipped in the package for preset `name`, if there is one."""
    folder = PRETRAINED_DIR / name
    return folder if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file() else None


def resolve_model_path(name_or_path: str) -> tuple[Path | None, CATConfig | None]:
    """Map a preset name or a local folder to (folder with weights, None) or, for a preset without bundled
    weights, (None, its config). Raises FileNotFoundError with the choices when it is neither."""
    if name_or_path in PRESETS:
        folder = bundled_weights_dir(name_or_path)
        return (folder, None) if folder is not None else (None, preset_config(name_or_path))
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"'{name_or_path}' has no config.json: not a saved CAT model folder")
        return path, None
    raise FileNotFoundError(
        f"'{name_or_path}' is neither a preset ({', '.join(PRESETS)}) nor a local model folder"
    )
