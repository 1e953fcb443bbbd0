"""catcodec: the CAT codec (Causal Audio Tokenizer with Transformer), 12.5 frames/s, 0.125-4 kbps."""

from transformers import AutoConfig, AutoModel, AutoModelForAudioTokenization

from .codes_file import CodesFile, read_codes, write_codes
from .configuration_cat import CATConfig
from .modeling_cat import CATDecoderOutput, CATEncoderOutput, CATModel, CATOutput
from .presets import DEFAULT_MODEL, PRESETS, preset_config

AutoConfig.register(CATConfig.model_type, CATConfig, exist_ok=True)
AutoModel.register(CATConfig, CATModel, exist_ok=True)
AutoModelForAudioTokenization.register(CATConfig, CATModel, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
    "CATConfig",
    "CATModel",
    "CATEncoderOutput",
    "CATDecoderOutput",
    "CATOutput",
    "PRESETS",
    "DEFAULT_MODEL",
    "preset_config",
    "CodesFile",
    "read_codes",
    "write_codes",
]
