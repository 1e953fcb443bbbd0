"""Every recipe in configs/ is one the trainer takes: its trainer fields, its task's keys and its model fields
are known and valid (a typo in a rarely run recipe otherwise shows only when someone runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catcodec.configuration_cat import CATConfig
from training.config import load_config
from training.task import get_task

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_recipes():
    names = {p.name for p in CONFIGS}
    assert {"codec_small_cpu.yaml", "asr_small_cpu.yaml", "tts_small_cpu.yaml", "codec_tiny_ci.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_is_valid(path: Path):
    config = load_config(path)  # checks the trainer's fields
    if config.task_name in ("asr", "tts"):
        task = get_task(config.task_name)(config)  # checks task keys and builds the model config
        assert task.model_config.num_quantizers >= 1
        return
    assert config.task_name == "codec"
    from catcodec.training_task import TASK_DEFAULTS

    unknown = set(config.task) - set(TASK_DEFAULTS)
    assert not unknown, f"unknown codec task keys {unknown}"
    overrides = config.task.get("model_overrides", {})
    known = set(CATConfig().to_dict())
    assert set(overrides) <= known, f"unknown CATConfig fields {set(overrides) - known}"
    if config.task.get("freeze_encoder"):
        assert config.task.get("semantic", {}).get("enabled", True) is False  # the task refuses it otherwise
