"""Load the demo's optional TTS and ASR pipelines once at start.

A folder passed on the command line must load (else a `DemoError` for the terminal); when none is passed the
bundled weights are used if there are any, and otherwise the tab gets a note saying why it is not available.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from catcodec import CATModel
from catcodec.decoder_weights import DECODER_FILE
from catcodec.messages import quote, reason
from tts.phonemes import PhonemizerUnavailable
from tts.pipeline import DEFAULT_MODEL as TTS_DEFAULT_MODEL
from tts.pipeline import PRETRAINED as TTS_PRETRAINED
from tts.pipeline import TTSPipeline, carried_codec

from .errors import DemoError

TTS_BUNDLED = TTS_PRETRAINED / TTS_DEFAULT_MODEL  # where `catcodec-tts` and TTSPipeline look for shipped weights


def _same_codec(name: str, other: str) -> bool:
    """Whether two codec names (preset names or folders) name the same model."""
    if name == other:
        return True
    a, b = Path(os.path.expanduser(name)), Path(os.path.expanduser(other))
    return a.is_dir() and b.is_dir() and a.resolve() == b.resolve()


def _codec_for(folder: Path, codec: CATModel, codec_name: str) -> CATModel | None:
    """The demo's codec when the model in `folder` names it (its config's codec_name) and ships no codec or decoder
    of its own, else None: the pipeline then loads the codec its model was trained on (with that decoder)."""
    if (folder / DECODER_FILE).is_file() or carried_codec(folder) is not None:
        return None
    try:
        wanted = json.loads((folder / "config.json").read_text()).get("codec_name")
    except (OSError, ValueError, AttributeError):
        return None
    return codec if wanted and _same_codec(str(wanted), codec_name) and codec.device.type == "cpu" else None


def load_tts(path: str | None, codec: CATModel, codec_name: str) -> tuple[Any | None, str]:
    """(TTSPipeline, "") or (None, why not). The demo's codec is shared when the TTS model names it."""
    folder = Path(path) if path else TTS_BUNDLED
    if not (folder / "config.json").is_file():
        if path:
            raise DemoError(f"--tts-model {quote(path)} is not a TTS model folder (no config.json)")
        return None, ("No TTS weights are bundled yet. Train a model (`python -m training tts --config ...`) and "
                      "start the demo with `catcodec demo --tts-model FOLDER`.")
    try:
        return TTSPipeline.from_pretrained(folder, codec=_codec_for(folder, codec, codec_name)), ""
    except PhonemizerUnavailable as exc:  # a phoneme model without espeak-ng: the rest of the demo still works
        if path:
            raise DemoError(f"cannot load the TTS model {quote(folder)}: {reason(exc)}") from None
        return None, f"The bundled TTS model reads phonemes: {reason(exc)}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DemoError(f"cannot load the TTS model {quote(folder)}: {reason(exc)}") from None


def load_asr(path: str | None, codec: CATModel, codec_name: str) -> tuple[Any | None, str]:
    """(ASRPipeline, "") or (None, why not). The demo's codec is shared when the ASR model names it."""
    try:
        from asr import pipeline as asr_pipeline
    except ImportError as exc:
        if path:
            raise DemoError(f"--asr-model given, but the ASR pipeline cannot be imported: {reason(exc)}") from None
        return None, "Speech recognition is not part of this install: the `asr` package has no pipeline."
    bundled = asr_pipeline.PRETRAINED / asr_pipeline.DEFAULT_MODEL  # read at call time: tests may point it elsewhere
    folder = Path(path) if path else bundled
    if not (folder / "config.json").is_file():
        if path:
            raise DemoError(f"--asr-model {quote(path)} is not an ASR model folder (no config.json)")
        return None, ("No ASR weights are bundled yet. Train a model (`python -m training asr --config ...`) and "
                      "start the demo with `catcodec demo --asr-model FOLDER`.")
    try:
        return asr_pipeline.ASRPipeline.from_pretrained(folder, codec=_codec_for(folder, codec, codec_name)), ""
    except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DemoError(f"cannot load the ASR model {quote(folder)}: {reason(exc)}") from None


__all__ = ["TTS_BUNDLED", "load_asr", "load_tts"]
