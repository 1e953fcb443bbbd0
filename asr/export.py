"""Ship a trained CAT-ASR: bf16 safetensors + config (see `catcodec.export`).

    python -m asr.export runs/asr_small_cpu/model --out asr/pretrained/cat-asr-small
"""

from catcodec.export import main

from .modeling_asr import CATASRModel

if __name__ == "__main__":
    raise SystemExit(main(model_class=CATASRModel, prog="python -m asr.export"))
