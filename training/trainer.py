"""The one training loop every model uses.

Per step: `grad_accum` micro-batches; for each, the task returns one loss per optimizer and each loss is
back-propagated into its own optimizer's parameters only (`autograd.backward(inputs=...)`), so a GAN's
generator loss never leaks gradients into the discriminator. Then, per optimizer: clip, step, schedule.
DDP wraps every model when launched by torchrun; only rank 0 writes. Checkpoints are atomic and hold
everything needed to continue bit for bit: models, optimizers, schedulers, step, RNG states, data position.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_mean, init_distributed, shutdown_distributed
from .optim import build_optimizer, build_scheduler
from .sampler import ResumableBatchSampler
from .task import Models, Task

log = logging.getLogger("training")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class MetricsLog:
    """Rank 0's record of training: a JSONL file, and TensorBoard when it is installed."""

    def __init__(self, output_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = output_dir / "metrics.jsonl"
        self.writer = None
        if enabled:
            output_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(output_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: the JSONL log is enough
                self.writer = None

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Trainer:
    """Runs a `Task` under a `TrainConfig`: `Trainer(config, task).fit(resume=...)`."""

    def __init__(self, config: TrainConfig, task: Task) -> None:
        self.config = config
        self.task = task
        self.device = resolve_device(config.device)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if config.threads and self.device.type == "cpu":
            torch.set_num_threads(config.threads)
        self.output_dir = Path(config.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.step = 0
        self.epoch = 0
        self.batches_done = 0  # micro-batches consumed in the current epoch
        self._stop_requested = False

        seed_everything(config.seed)  # identical model init on every rank
        raw = task.build_models()
        if set(raw) != set(config.optimizers):
            raise ValueError(
                f"task '{task.name}' builds models {sorted(raw)} but the recipe configures optimizers "
                f"{sorted(config.optimizers)}: give one optimizer per model"
            )
        self.raw_models: dict[str, nn.Module] = {k: m.to(self.device) for k, m in raw.items()}
        self.wrapped: dict[str, nn.Module] = {}
        for name, model in self.raw_models.items():
            if self.dist.enabled and any(p.requires_grad for p in model.parameters()):
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.wrapped[name] = DistributedDataParallel(
                    model, device_ids=ids, find_unused_parameters=task.find_unused_parameters(name)
                )
            else:
                self.wrapped[name] = model
        self.models = Models(self.wrapped, self.raw_models)
        self.params = {k: [p for p in m.parameters() if p.requires_grad] for k, m in self.raw_models.items()}
        self.optimizers = {k: build_optimizer(self.raw_models[k], c) for k, c in config.optimizers.items()}
        self.schedulers = {
            k: build_scheduler(opt, config.max_steps, config.schedule) for k, opt in self.optimizers.items()
        }
        seed_everything(config.seed + 1000 * self.dist.rank)  # per-rank randomness from here on

        self.train_set, self.val_set = task.build_datasets()
        self.sampler = task.make_batch_sampler(
            self.train_set, config.batch_size, config.seed, self.dist.rank, self.dist.world_size
        ) or ResumableBatchSampler(
            len(self.train_set), config.batch_size, config.seed, self.dist.rank, self.dist.world_size
        )
        self.metrics = MetricsLog(self.output_dir, self.dist.is_main)

    # ---- data ----
    def _loader(self) -> DataLoader:
        self.sampler.set_position(self.epoch, self.batches_done)
        if hasattr(self.train_set, "set_epoch"):  # per-epoch crops and mixing, decided before workers fork
            self.train_set.set_epoch(self.epoch)
        return DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            collate_fn=self.task.collate,
            num_workers=self.config.num_workers,
            persistent_workers=False,
            # its own generator: a DataLoader otherwise draws a worker seed from the global RNG, which a
            # resumed run (new loader mid-epoch) would draw at a different moment than an unbroken one
            generator=torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.epoch),
        )

    def _batches(self) -> Iterator[Any]:
        """Micro-batches forever, epoch after epoch, tracking the position for resume."""
        while True:
            for batch in self._loader():
                self.batches_done += 1
                yield batch
            self.epoch += 1
            self.batches_done = 0

    def _val_batches(self) -> Iterator[Any]:
        if self.val_set is None:
            return iter(())
        loader = DataLoader(
            self.val_set,
            batch_size=self.config.batch_size,
            shuffle=False,
            collate_fn=self.task.collate,
            num_workers=0,
            generator=torch.Generator().manual_seed(self.config.seed),
        )
        return (b for i, b in zip(range(self.config.val_batches), loader))

    # ---- checkpoints ----
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "models": {k: m.state_dict() for k, m in self.raw_models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "rng": rng_state(),
            "config": self.config.to_dict(),
            "world_size": self.dist.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.raw_models.items():
            m.load_state_dict(state["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.step, self.epoch, self.batches_done = state["step"], state["epoch"], state["batches_done"]
        if state.get("world_size", 1) == self.dist.world_size:
            set_rng_state(state["rng"])  # a different world size cannot replay per-rank streams exactly

    def save(self) -> Path | None:
        path = None
        if self.dist.is_main:
            path = save_checkpoint(self.state_dict(), self.checkpoint_dir, self.step, self.config.keep_checkpoints)
            self.task.on_save(self.models, self.output_dir, self.step)
        self._barrier()
        return path

    def resume(self, checkpoint: str | Path | bool = True) -> bool:
        """Load `checkpoint`, or the newest one in the output folder when True; False if none exists."""
        path = latest_checkpoint(self.checkpoint_dir) if checkpoint is True else Path(checkpoint)
        if path is None or not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path))
        if self.dist.is_main:
            log.info("resumed from %s at step %d", path, self.step)
        return True

    def _barrier(self) -> None:
        if self.dist.enabled:
            torch.distributed.barrier()

    # ---- the loop ----
    def _autocast(self):
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _no_sync(self, sync: bool):
        if sync or not self.dist.enabled:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        for m in self.wrapped.values():
            if isinstance(m, DistributedDataParallel):
                stack.enter_context(m.no_sync())
        return stack

    def train_step(self, micro_batches: list[Any]) -> dict[str, float]:
        for m in self.raw_models.values():
            m.train()
        n = len(micro_batches)
        totals: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            with self._no_sync(sync=i == n - 1):
                with self._autocast():
                    out = self.task.training_step(self.models, batch, self.step)
                for name, loss in out.losses.items():
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"step {self.step}: loss '{name}' is {loss.item()}")
                    torch.autograd.backward(loss / n, inputs=self.params[name])
                    totals[f"loss_{name}"] = totals.get(f"loss_{name}", 0.0) + loss.item() / n
            for k, v in out.logs.items():
                totals[k] = totals.get(k, 0.0) + float(v) / n
        for name, opt in self.optimizers.items():
            clip = self.config.optimizers[name].grad_clip
            if clip is not None and any(p.grad is not None for p in self.params[name]):
                norm = torch.nn.utils.clip_grad_norm_(self.params[name], clip)
                totals[f"grad_norm_{name}"] = float(norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            self.schedulers[name].step()
            totals[f"lr_{name}"] = self.schedulers[name].get_last_lr()[0]
        return totals

    def validate(self) -> dict[str, float]:
        for m in self.raw_models.values():
            m.eval()
        sample_dir = self.output_dir / "samples" / f"step_{self.step:08d}" if self.dist.is_main else None
        with torch.random.fork_rng(devices=[]), torch.no_grad(), self._autocast():
            values = self.task.validate(self.models, self._val_batches(), self.step, sample_dir)
        return all_reduce_mean(values, self.dist)

    def _request_stop(self, signum, frame) -> None:
        self._stop_requested = True

    def fit(self, resume: str | Path | bool = False, until_step: int | None = None) -> dict[str, float]:
        """Train to `max_steps` (continuing from a checkpoint when `resume`); returns the last logged figures.

        `until_step` or the recipe's `time_limit_minutes` stop earlier, with a checkpoint, without changing
        the schedule: a later `fit(resume=True)` continues exactly where this one stopped."""
        if resume:
            self.resume(resume)
        cfg = self.config
        stop_step = cfg.max_steps if until_step is None else min(until_step, cfg.max_steps)
        deadline = time.monotonic() + 60 * cfg.time_limit_minutes if cfg.time_limit_minutes else None
        previous = signal.signal(signal.SIGTERM, self._request_stop) if self.dist.is_main else None
        batches = self._batches()
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main),
                   desc=f"train {self.task.name}", dynamic_ncols=True)
        last: dict[str, float] = {}
        window_items, window_start = 0, time.perf_counter()
        saved_at = self.step if resume else -1
        try:
            while self.step < stop_step and not self._stop_requested:
                if deadline is not None and time.monotonic() > deadline:
                    log.info("time limit of %.1f minutes reached at step %d", cfg.time_limit_minutes, self.step)
                    break
                micro = [next(batches) for _ in range(cfg.grad_accum)]
                window_items += sum(self.task.batch_size_of(b) for b in micro) * self.dist.world_size
                figures = self.train_step(micro)
                self.step += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    elapsed = time.perf_counter() - window_start
                    figures = all_reduce_mean(figures, self.dist)
                    figures["items_per_s"] = window_items / max(elapsed, 1e-9)
                    figures["epoch"] = self.epoch
                    self.metrics.write(self.step, "train", figures)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in figures.items() if k.startswith("loss_") or k == "items_per_s"})
                    last = figures
                    window_items, window_start = 0, time.perf_counter()
                if cfg.val_every and self.step % cfg.val_every == 0:
                    val = self.validate()
                    if val:
                        self.metrics.write(self.step, "val", val)
                        last = {**last, **{f"val_{k}": v for k, v in val.items()}}
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                    saved_at = self.step
        finally:
            bar.close()
            if self.step != saved_at and self.step > 0:
                self.save()  # at exit too: nothing lost on Ctrl-C, SIGTERM or an error
            self.metrics.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return last

    def close(self) -> None:
        shutdown_distributed()


__all__ = ["Trainer", "resolve_device", "seed_everything"]
