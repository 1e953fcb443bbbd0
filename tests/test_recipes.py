"""Every recipe in configs/ is one the trainer takes: its trainer fields, its task's keys and its model fields
are known and valid (a typo in a rarely run recipe otherwise shows only when someone runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catcodec.presets import PRESETS, preset_config
from training.config import load_config
from training.task import get_task
from tts.phonemes import espeak_available

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_recipes():
    names = {p.name for p in CONFIGS}
    assert {"codec_small_cpu.yaml", "asr_small_cpu.yaml", "tts_small_cpu.yaml", "codec_tiny_ci.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_is_valid(path: Path):
    config = load_config(path)  # checks the trainer's fields
    model = config.task.get("model")
    if isinstance(model, dict) and model.get("text_frontend") == "phonemes" and not espeak_available():
        pytest.skip("the recipe reads phonemes and espeak-ng is not installed")
    task = get_task(config.task_name)(config)  # checks the task's keys (and for TTS / ASR, the model config)
    if config.task_name == "codec" and task.cfg["model"] in PRESETS:
        preset_config(task.cfg["model"], **task.cfg["model_overrides"])  # refuses unknown model fields
