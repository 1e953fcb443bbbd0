"""Ship a trained CAT-TTS: bf16 safetensors + config (see `catcodec.export`).

    python -m tts.export runs/tts_small_cpu/model --out tts/pretrained/cat-tts-small
"""

from catcodec.export import main

from .modeling_tts import CATTTSModel

if __name__ == "__main__":
    raise SystemExit(main(model_class=CATTTSModel, prog="python -m tts.export"))
