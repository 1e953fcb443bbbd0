"""Carrying a code reader's tables (TTS, ASR) from one codec's codes to another's: exact where the tables are
linear in the code vectors, checked against the codec that made the learnt codes, wired into `task.init_from`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asr.configuration_asr import CATASRConfig
from asr.modeling_asr import CATASRModel
from catcodec import CATConfig, CATModel
from catcodec.code_vectors import project_code_vectors, transplant_code_tables
from training.config import TrainConfig
from training.task import get_task
from tts.configuration_tts import CATTTSConfig
from tts.modeling_tts import CATTTSModel

SIZE, LEVELS, DIM = 64, 2, 12
TTS_CFG = {"num_quantizers": LEVELS, "codebook_size": SIZE, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
           "intermediate_size": 64, "depth_hidden_size": 32, "depth_num_layers": 1, "depth_num_heads": 2,
           "depth_intermediate_size": 64, "max_positions": 64}


def _vectors_and_renamed(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Code vectors of an 'old' codec, and a 'new' codec with the same vectors under other code numbers:
    new code j of level k is old code perm[k, j]."""
    g = torch.Generator().manual_seed(seed)
    old = torch.randn(LEVELS, SIZE, DIM, generator=g)
    perm = torch.stack([torch.randperm(SIZE, generator=g) for _ in range(LEVELS)])
    new = torch.stack([old[k, perm[k]] for k in range(LEVELS)])
    return old, new, perm


def test_linear_tables_follow_renamed_codes_exactly():
    old, new, perm = _vectors_and_renamed()
    mapping, bias = torch.randn(DIM, 5), torch.randn(5)
    tables = [old[k] @ mapping + bias for k in range(LEVELS)]
    moved, r2 = transplant_code_tables(tables, old, new, ridge=1e-9)
    assert r2 == pytest.approx(1.0, abs=1e-6)
    for k in range(LEVELS):
        torch.testing.assert_close(moved[k], tables[k][perm[k]], atol=1e-4, rtol=1e-4)


def test_tables_unrelated_to_the_vectors_fit_poorly():
    old, new, _ = _vectors_and_renamed()
    tables = [torch.randn(SIZE, 5, generator=torch.Generator().manual_seed(k + 7)) for k in range(LEVELS)]
    _, r2 = transplant_code_tables(tables, old, new)
    assert r2 < 0.4  # 13 parameters per output column cannot explain 128 random rows


def test_transplant_refuses_mismatched_shapes():
    old, new, _ = _vectors_and_renamed()
    with pytest.raises(ValueError, match="rows"):
        transplant_code_tables([torch.zeros(SIZE + 1, 4)], old, new)
    with pytest.raises(ValueError, match="differ in shape"):
        transplant_code_tables([torch.zeros(SIZE, 4)], old, new[:, :, :3])
    with pytest.raises(ValueError, match="levels"):
        transplant_code_tables([torch.zeros(SIZE, 4)] * 3, old, new)


def test_tts_reads_and_writes_renamed_codes_as_before():
    """Tables that are a linear image of the code vectors (the init from the codec, heads made so too) carry over
    exactly: the frame input of renamed codes equals the old frame input, and each head scores the renamed codes
    as it scored the old ones (end of speech untouched)."""
    torch.manual_seed(0)
    old, new, perm = _vectors_and_renamed(1)
    model = CATTTSModel(CATTTSConfig(**TTS_CFG)).eval()
    model.init_code_embeddings(old)
    with torch.no_grad():
        for k, head in enumerate(model.heads):
            head.weight[:SIZE] = project_code_vectors(old[k:k + 1], 1, SIZE, 32, 0.02, seed=5 + k)[0]
    before = {name: t.clone() for name, t in model.state_dict().items()}
    inverse = torch.stack([torch.argsort(perm[k]) for k in range(LEVELS)])  # old code c is new code inverse[k, c]
    codes = torch.randint(0, SIZE, (1, LEVELS, 7))
    renamed = torch.stack([inverse[k][codes[0, k]] for k in range(LEVELS)])[None]
    expected = model.frame_embedding(codes, LEVELS)

    fits = model.transplant_codes(old, new, ridge=1e-9)
    assert set(fits) == {"code_embeds", "depth_code_embeds", "heads.0", "heads.1"}
    assert min(fits.values()) > 0.999
    torch.testing.assert_close(model.frame_embedding(renamed, LEVELS), expected, atol=1e-5, rtol=1e-4)
    for k in range(LEVELS):
        torch.testing.assert_close(model.heads[k].weight[:SIZE], before[f"heads.{k}.weight"][:SIZE][perm[k]],
                                   atol=1e-5, rtol=1e-4)
    assert torch.equal(model.heads[0].weight[SIZE], before["heads.0.weight"][SIZE])  # end-of-speech row
    assert torch.equal(model.text_embed.weight, before["text_embed.weight"])  # nothing else moves


def test_asr_reads_renamed_codes_as_before():
    torch.manual_seed(0)
    old, new, perm = _vectors_and_renamed(2)
    model = CATASRModel(CATASRConfig(text_vocab_size=40, num_quantizers=LEVELS, codebook_size=SIZE, hidden_size=32,
                                     num_layers=1, num_heads=2, intermediate_size=64, max_positions=64)).eval()
    model.init_code_embeddings(old)
    inverse = torch.stack([torch.argsort(perm[k]) for k in range(LEVELS)])
    codes = torch.randint(0, SIZE, (2, LEVELS, 5))
    renamed = torch.stack([inverse[k][codes[:, k]] for k in range(LEVELS)], dim=1)
    expected = model.frame_embedding(codes, 1), model.frame_embedding(codes, LEVELS)
    assert model.transplant_codes(old, new, ridge=1e-9)["code_embed"] > 0.999
    torch.testing.assert_close(model.frame_embedding(renamed, 1), expected[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.frame_embedding(renamed, LEVELS), expected[1], atol=1e-5, rtol=1e-4)


def _tiny_codec(folder, seed: int) -> tuple[str, str]:
    torch.manual_seed(seed)
    codec = CATModel(CATConfig(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48], stage_layers=[1, 1, 1, 1],
                               stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32], quantizer_dim=32,
                               num_quantizers=LEVELS, codebook_size=SIZE))
    codec.save_pretrained(folder)
    return str(folder), codec.codes_fingerprint()


def _codes_manifest(folder, weights_id: str):
    from catcodec.codes_file import CodesFile, write_codes

    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(["hello there", "good day"]):
        write_codes(folder / f"c{i}.npz", CodesFile(rng.integers(0, SIZE, (LEVELS, 6)).astype(np.int16), 6 * 1280,
                                                    16000, LEVELS, "tiny", "0" * 16, weights_id=weights_id))
        rows.append({"audio": f"c{i}.wav", "text": text, "speaker": "a", "codes": f"c{i}.npz", "num_frames": 6})
    manifest = folder / "m.codes.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.mark.parametrize("task_name", ["tts", "asr"])
def test_init_codes_from_lets_a_saved_model_learn_another_codecs_codes(tmp_path, task_name):
    """With `task.init_codes_from` (the codec that made the saved model's codes) a warm start accepts data of the
    run's codec and carries the code tables over; a wrong codec, or the option without init_from, is refused."""
    old_dir, old_id = _tiny_codec(tmp_path / "old_codec", 0)
    new_dir, new_id = _tiny_codec(tmp_path / "new_codec", 1)
    assert old_id != new_id
    manifest = _codes_manifest(tmp_path, new_id)
    model_cfg = ({**TTS_CFG} if task_name == "tts" else
                 {"num_quantizers": LEVELS, "codebook_size": SIZE, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                  "intermediate_size": 64, "max_positions": 64})

    def task_for(**task):
        return get_task(task_name)(TrainConfig(
            task_name=task_name, output_dir=str(tmp_path / "run"), max_steps=1, batch_size=2, progress=False,
            task={"model": {**model_cfg, "codec_name": new_dir}, "train_manifests": [str(manifest)], **task}))

    saved = task_for().build_models()["model"]
    saved.config.codec_weights_id = old_id
    saved.save_pretrained(tmp_path / "saved")
    plain = task_for(init_from=str(tmp_path / "saved"))
    plain.build_models()
    with pytest.raises(ValueError, match=f"codec weights {old_id}"):
        plain.build_datasets()  # without the transplant the old model cannot read the new codes

    task = task_for(init_from=str(tmp_path / "saved"), init_codes_from=old_dir)
    model = task.build_models()["model"]
    table = "code_embeds.0.weight" if task_name == "tts" else "code_embed.weight"
    assert not torch.equal(model.state_dict()[table], saved.state_dict()[table])  # carried to the new codes
    task.build_datasets()  # and accepted
    assert task.model_config.codec_weights_id == new_id

    with pytest.raises(ValueError, match="give the codec that made its training codes"):
        task_for(init_from=str(tmp_path / "saved"), init_codes_from=new_dir).build_models()
    with pytest.raises(ValueError, match="needs task.init_from"):
        task_for(init_codes_from=old_dir).build_models()
