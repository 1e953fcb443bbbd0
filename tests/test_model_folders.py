"""The pipelines on CAT codes find their model through one `catcodec.model_folders.find_model_folder`: the folder
given, or the bundled one; without either, a message that says how to train one."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package, cls, kind, article", [("tts", "TTSPipeline", "TTS", "a"), ("asr", "ASRPipeline", "ASR", "an")])
def test_missing_weights_say_how_to_train(tmp_path, monkeypatch, package, cls, kind, article):
    pipeline = importlib.import_module(f"{package}.pipeline")
    monkeypatch.setattr(pipeline, "PRETRAINED", tmp_path / "nothing bundled")
    with pytest.raises(FileNotFoundError, match=rf"no {kind} weights are bundled yet.*python -m training {package}"):
        getattr(pipeline, cls).from_pretrained()
    with pytest.raises(FileNotFoundError, match=f"is not {article} {kind} model folder"):
        getattr(pipeline, cls).from_pretrained(tmp_path)
