"""A codec decoder on its own: save one model's decoder weights, put them into another model with the same codes.

A model built on CAT codes (the TTS) may ship the decoder it was tuned with, the way an acoustic model ships a
vocoder fine-tuned on its own output: its codes are imperfect, and a decoder that renders clean codes better need
not render them better. The file holds only `decoder.*` tensors; its metadata records the weights id of the
encoder and quantizer whose codes the decoder was trained on, and loading refuses a codec with other codes.

    save_decoder_weights(codec, "tts/pretrained/cat-tts-small/codec_decoder.safetensors")
    load_decoder_weights(other_codec, "tts/pretrained/cat-tts-small/codec_decoder.safetensors")
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .atomic import atomic_write
from .codes_file import check_codec_weights
from .messages import quote

PREFIX = "decoder."
DECODER_FILE = "codec_decoder.safetensors"  # its name in a model folder that ships one


def save_decoder_weights(model, path: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write `model`'s decoder tensors (in `dtype`) to a safetensors file, with the codes' weights id."""
    path = Path(path)
    tensors = {name: value.detach().to("cpu", dtype).contiguous()
               for name, value in model.state_dict().items() if name.startswith(PREFIX)}
    if not tensors:
        raise ValueError("the model has no decoder weights (no 'decoder.' tensors)")
    metadata = {"weights_id": model.codes_fingerprint(), "config_hash": model.config.architecture_hash()}
    atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))
    return path


def load_decoder_weights(model, path: str | Path) -> None:
    """Replace `model`'s decoder weights with the file's (cast to the model's dtype), in place.

    ValueError when the file was made for another architecture, for codes of other encoder or quantizer
    weights, or does not hold exactly the model's decoder tensors; FileNotFoundError when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no decoder weights at {quote(path)}")
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{quote(path)} is not a readable safetensors file: {exc}") from None
    config_hash = model.config.architecture_hash()
    if metadata.get("config_hash", config_hash) != config_hash:
        raise ValueError(f"the decoder in {quote(path)} is for codec config {metadata['config_hash']}, "
                         f"not this codec's {config_hash}")
    check_codec_weights(model, metadata.get("weights_id", ""), f"the decoder in {quote(path)}",
                        remedy="load it into the codec it was trained with")
    own = {name: value for name, value in model.state_dict().items() if name.startswith(PREFIX)}
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ValueError(f"{quote(path)} does not hold this codec's decoder: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    wrong = [name for name, value in own.items() if tuple(tensors[name].shape) != tuple(value.shape)]
    if wrong:
        raise ValueError(f"{quote(path)}: shapes differ from this codec's decoder for {wrong[:3]}")
    with torch.no_grad():
        for name, value in own.items():
            value.copy_(tensors[name].to(value.dtype))


__all__ = ["DECODER_FILE", "load_decoder_weights", "save_decoder_weights"]
