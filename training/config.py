"""Training configuration: dataclasses loaded from YAML, with `key.sub=value` overrides from the command line.

A recipe file has the trainer's own fields at the top level and the task's fields under `task:`:

    task_name: codec
    max_steps: 10000
    batch_size: 8
    optimizers: {generator: {lr: 3.0e-4}, discriminator: {lr: 3.0e-4}}
    task: {model: cat-small-16k, train_manifests: [...]}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class OptimizerConfig:
    """AdamW settings of one optimizer (a GAN task has one per player)."""

    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global norm of this optimizer's gradients; None = no clipping


@dataclass
class ScheduleConfig:
    """Linear warmup to the peak learning rate, then cosine decay to `min_lr_ratio` of it at max_steps."""

    warmup_steps: int = 1000
    min_lr_ratio: float = 0.1


@dataclass
class TrainConfig:
    task_name: str = ""
    output_dir: str = "runs/default"
    seed: int = 0
    max_steps: int = 1000
    batch_size: int = 8  # items per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    precision: str = "fp32"  # fp32 | bf16 (autocast on CPU and CUDA)
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch.set_num_threads on CPU; None = leave torch's default
    num_workers: int = 0
    log_every: int = 10
    val_every: int = 500
    val_batches: int = 8
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    progress: bool = True
    time_limit_minutes: float | None = None  # stop (with a checkpoint) after this long; resume continues
    optimizers: dict[str, OptimizerConfig] = field(default_factory=lambda: {"model": OptimizerConfig()})
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    task: dict[str, Any] = field(default_factory=dict)  # the task's own config, read by the task
    distill: dict[str, Any] | None = None  # teacher path, loss weights, temperature (training.distill)

    def __post_init__(self) -> None:
        self.optimizers = {
            name: cfg if isinstance(cfg, OptimizerConfig) else _build(OptimizerConfig, cfg, f"optimizers.{name}")
            for name, cfg in self.optimizers.items()
        }
        if not isinstance(self.schedule, ScheduleConfig):
            self.schedule = _build(ScheduleConfig, self.schedule, "schedule")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.grad_accum < 1 or self.batch_size < 1 or self.max_steps < 0:
            raise ValueError("batch_size and grad_accum must be >= 1 and max_steps >= 0")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def _build(cls, values: dict[str, Any] | None, where: str):
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return cls(**values)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `a.b.c=value` entries (value parsed as YAML: numbers, booleans, lists) in a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: '{part}' is not a section")
        node[parts[-1]] = _parse_value(raw)
    return data


def _parse_value(raw: str) -> Any:
    """YAML scalar/list, except that numbers YAML 1.1 leaves as strings (e.g. `3e-4`) become floats."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path | None, overrides: list[str] | None = None, **defaults: Any) -> TrainConfig:
    """Read a YAML recipe (or start empty), apply overrides, and build a checked `TrainConfig`."""
    data: dict[str, Any] = dict(defaults)
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a recipe must be a YAML mapping")
        data.update(loaded)
    apply_overrides(data, overrides or [])
    return _build(TrainConfig, data, "the recipe")
