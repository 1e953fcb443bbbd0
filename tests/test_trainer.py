"""The generic trainer on a toy task: resume equality, checkpoints, schedule, config, two optimizers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from training.checkpoint import atomic_torch_save, list_checkpoints, save_checkpoint
from training.config import OptimizerConfig, ScheduleConfig, TrainConfig, apply_overrides, load_config
from training.optim import warmup_cosine
from training.sampler import ResumableBatchSampler
from training.task import Models, StepOutput, Task, get_task, register_task
from training.trainer import Trainer


class IndexedNoise(Dataset):
    """Items depend only on (index, epoch): the contract that makes resume exact."""

    def __init__(self, n: int = 64) -> None:
        self.n = n
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i * 7919 + self.epoch)
        x = torch.randn(6, generator=g)
        return x, x.sum(0, keepdim=True) * 0.5


@register_task("toy-two-player")
class ToyTask(Task):
    """A regressor ('model') and a critic ('critic') with their own losses, plus dropout (uses global RNG)."""

    def build_models(self):
        return {
            "model": nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.1), nn.Linear(16, 1)),
            "critic": nn.Linear(1, 1),
        }

    def build_datasets(self):
        return IndexedNoise(), IndexedNoise(16)

    def collate(self, items):
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])

    def training_step(self, models: Models, batch, step: int) -> StepOutput:
        x, y = batch
        pred = models["model"](x)
        critic_loss = (models["critic"](pred.detach()) - y).pow(2).mean()
        # the model's loss goes through the critic: its gradient must not reach the critic's parameters
        model_loss = (pred - y).pow(2).mean() + 0.1 * models.raw("critic")(pred).pow(2).mean()
        return StepOutput({"model": model_loss, "critic": critic_loss}, {"mse": float((pred - y).pow(2).mean().detach())})

    def validate(self, models, batches, step, sample_dir):
        losses = [float((models.raw("model")(x) - y).pow(2).mean()) for x, y in batches]
        return {"mse": sum(losses) / len(losses)}


def toy_config(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(
        task_name="toy-two-player",
        output_dir=str(tmp_path / "run"),
        max_steps=12,
        batch_size=8,
        log_every=2,
        val_every=5,
        val_batches=2,
        checkpoint_every=6,
        keep_checkpoints=2,
        progress=False,
        optimizers={"model": OptimizerConfig(lr=1e-2), "critic": OptimizerConfig(lr=1e-2)},
        schedule=ScheduleConfig(warmup_steps=3, min_lr_ratio=0.1),
    )
    base.update(kw)
    return TrainConfig(**base)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": p.detach().clone() for k, m in trainer.raw_models.items() for n, p in m.state_dict().items()}


def test_resume_equals_uninterrupted_training(tmp_path):
    straight = Trainer(toy_config(tmp_path / "a", max_steps=12, checkpoint_every=100), ToyTask(toy_config(tmp_path / "a")))
    straight.fit()
    # 6 steps, stop (checkpoint at exit), then a fresh trainer resumes and runs to 12
    cfg_b = toy_config(tmp_path / "b", max_steps=12, checkpoint_every=100)
    first = Trainer(cfg_b, ToyTask(cfg_b))
    first.fit(until_step=6)
    assert first.step == 6
    resumed = Trainer(cfg_b, ToyTask(cfg_b))
    resumed.fit(resume=True)
    assert resumed.step == straight.step == 12
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # the optimizers' states match too (not only the weights)
    for name in straight.optimizers:
        sa, sb = straight.optimizers[name].state_dict()["state"], resumed.optimizers[name].state_dict()["state"]
        for pid in sa:
            assert torch.equal(sa[pid]["exp_avg"], sb[pid]["exp_avg"])


def test_resume_mid_epoch_continues_the_data_order(tmp_path):
    # 64 items / batch 8 = 8 batches per epoch: stopping at step 3 is mid-epoch
    cfg = toy_config(tmp_path, max_steps=10, checkpoint_every=100)
    t = Trainer(cfg, ToyTask(cfg))
    t.fit(until_step=3)
    assert (t.epoch, t.batches_done) == (0, 3)
    cfg2 = cfg
    t2 = Trainer(cfg2, ToyTask(cfg2))
    t2.resume()
    assert (t2.step, t2.epoch, t2.batches_done) == (3, 0, 3)
    t2.fit()
    assert (t2.epoch, t2.batches_done) == (1, 2)


def test_generator_loss_does_not_train_the_critic(tmp_path):
    cfg = toy_config(tmp_path, max_steps=1, optimizers={"model": OptimizerConfig(lr=1e-2), "critic": OptimizerConfig(lr=0.0)})
    t = Trainer(cfg, ToyTask(cfg))
    before = weights(t)
    batch = next(t._batches())
    t.train_step([batch])
    after = weights(t)
    assert torch.equal(before["critic.weight"], after["critic.weight"])  # lr 0: untouched
    assert not torch.equal(before["model.0.weight"], after["model.0.weight"])
    # and the critic's own gradient comes only from its own loss: recompute it by hand
    cfg2 = toy_config(tmp_path / "c", max_steps=1)
    t2 = Trainer(cfg2, ToyTask(cfg2))
    out = t2.task.training_step(t2.models, batch, 0)
    expected = torch.autograd.grad(out.losses["critic"], t2.raw_models["critic"].weight, retain_graph=True)[0]
    torch.autograd.backward(out.losses["model"], inputs=t2.params["model"])
    assert t2.raw_models["critic"].weight.grad is None
    torch.autograd.backward(out.losses["critic"], inputs=t2.params["critic"])
    assert torch.allclose(t2.raw_models["critic"].weight.grad, expected)


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    cfg = toy_config(tmp_path, max_steps=12, checkpoint_every=3, keep_checkpoints=2)
    t = Trainer(cfg, ToyTask(cfg))
    t.fit()
    names = [p.name for p in list_checkpoints(t.checkpoint_dir)]
    assert names == ["step_00000009.pt", "step_00000012.pt"]
    assert not [p for p in t.checkpoint_dir.iterdir() if p.name.endswith(".tmp")]
    # a save that fails half-way leaves the previous file intact and no temp file
    target = tmp_path / "x.pt"
    atomic_torch_save({"a": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"a": Unpicklable()}, target)
    assert torch.load(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".x.pt")] == []
    save_checkpoint({"s": 1}, tmp_path / "ck", 5, keep=1)
    save_checkpoint({"s": 2}, tmp_path / "ck", 7, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path / "ck")] == ["step_00000007.pt"]


def test_metrics_log_and_validation(tmp_path):
    import json

    cfg = toy_config(tmp_path, max_steps=10, log_every=5, val_every=5)
    last = Trainer(cfg, ToyTask(cfg)).fit()
    lines = [json.loads(l) for l in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    val = [l for l in lines if l["split"] == "val"]
    assert [l["step"] for l in train] == [5, 10] and [l["step"] for l in val] == [5, 10]
    assert {"loss_model", "loss_critic", "lr_model", "items_per_s", "mse"} <= set(train[0])
    assert train[0]["items_per_s"] > 0
    assert "val_mse" in last and math.isfinite(last["val_mse"])


def test_gradient_accumulation_matches_big_batch(tmp_path):
    """2 micro-batches of 4 give the same update as one batch of 8 (no dropout: eval-free toy)."""

    class NoDropout(ToyTask):
        def build_models(self):
            torch.manual_seed(0)
            return {"model": nn.Linear(6, 1), "critic": nn.Linear(1, 1)}

    big = toy_config(tmp_path / "big", max_steps=1, batch_size=8)
    acc = toy_config(tmp_path / "acc", max_steps=1, batch_size=4, grad_accum=2)
    tb, ta = Trainer(big, NoDropout(big)), Trainer(acc, NoDropout(acc))
    tb.fit()
    ta.fit()
    for k, v in weights(tb).items():
        assert torch.allclose(v, weights(ta)[k], atol=1e-6), k


def test_warmup_cosine_schedule():
    cfg = ScheduleConfig(warmup_steps=10, min_lr_ratio=0.1)
    assert warmup_cosine(0, 100, cfg) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, cfg) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, cfg) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, cfg) == pytest.approx(0.55)
    assert warmup_cosine(100, 100, cfg) == pytest.approx(0.1)
    assert warmup_cosine(500, 100, cfg) == pytest.approx(0.1)


def test_config_yaml_overrides_and_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("max_steps: 5\noptimizers: {model: {lr: 0.1, betas: [0.8, 0.9]}}\ntask: {crop: 1.0}\n")
    cfg = load_config(recipe, ["max_steps=7", "task.crop=2.5", "optimizers.model.lr=3e-4", "precision=bf16"])
    assert cfg.max_steps == 7 and cfg.task == {"crop": 2.5} and cfg.precision == "bf16"
    assert cfg.optimizers["model"].lr == pytest.approx(3e-4) and cfg.optimizers["model"].betas == (0.8, 0.9)
    with pytest.raises(ValueError, match="unknown key.*max_stepz"):
        load_config(recipe, ["max_stepz=1"])
    with pytest.raises(ValueError, match="precision"):
        load_config(recipe, ["precision=fp8"])
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides({}, ["novalue"])


def test_models_and_optimizers_must_match(tmp_path):
    cfg = toy_config(tmp_path, optimizers={"model": OptimizerConfig()})
    with pytest.raises(ValueError, match="one optimizer per model"):
        Trainer(cfg, ToyTask(cfg))


def test_task_registry():
    assert get_task("toy-two-player") is ToyTask
    with pytest.raises(KeyError, match="unknown task"):
        get_task("no-such-task")
    assert get_task("codec").__name__ == "CodecTask"  # found through the package's entry point


def test_tasks_of_a_source_checkout_load_without_installed_entry_points(monkeypatch):
    """A checkout run without `pip install` (no entry points in the environment) finds the tasks that its
    pyproject.toml declares, and only those."""
    import training.task as task_module

    monkeypatch.setattr(task_module, "entry_points", lambda group: [])
    monkeypatch.setattr(task_module, "_TASKS", {})
    assert task_module.get_task("asr").__name__ == "ASRTask"
    assert "codec" not in task_module._TASKS  # only the package asked for was imported
    assert task_module.available_tasks() == ["asr", "codec", "tts"]
    with pytest.raises(KeyError, match="unknown task 'toy'"):
        task_module.get_task("toy")


def test_batch_sampler_shards_global_batches():
    one = ResumableBatchSampler(40, 8, seed=3)
    r0 = ResumableBatchSampler(40, 4, seed=3, rank=0, world_size=2)
    r1 = ResumableBatchSampler(40, 4, seed=3, rank=1, world_size=2)
    for b, x, y in zip(one, r0, r1):
        assert b == x + y
    one.set_position(epoch=1, batches_done=2)
    rest = list(one)
    full = ResumableBatchSampler(40, 8, seed=3)
    full.set_position(1, 0)
    assert rest == list(full)[2:]


def test_bf16_autocast_runs_and_stays_finite(tmp_path):
    cfg = toy_config(tmp_path, max_steps=3, precision="bf16")
    last = Trainer(cfg, ToyTask(cfg)).fit()
    assert math.isfinite(last["loss_model"])


def test_repeated_override_flags_all_apply(monkeypatch):
    import training.__main__ as cli

    seen = {}

    def fake_load(path, overrides, task_name):
        seen["overrides"] = list(overrides)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "load_config", fake_load)
    assert cli.main(["codec", "-o", "a=1", "b=2", "-o", "c=3"]) == 2
    assert seen["overrides"] == ["a=1", "b=2", "c=3"]  # a second -o adds to the first, it does not replace it
