"""The contract between the generic trainer and a model package, and the registry of tasks by name.

A task says what the models are (one per optimizer), what a batch is, and which loss each optimizer
minimises. The trainer owns everything else: devices, DDP, precision, accumulation, clipping, schedules,
checkpoints, logging. Model packages register their tasks under the entry-point group `training.tasks`
(see pyproject.toml), so `training` never imports them. A source checkout that was never pip-installed
(a lent machine whose Python the package does not declare) reads the same entry points from its pyproject.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import Dataset

from .config import TrainConfig

ENTRY_POINT_GROUP = "training.tasks"


@dataclass
class StepOutput:
    """One micro-batch's losses, keyed by optimizer name, plus figures to log."""

    losses: dict[str, torch.Tensor]
    logs: dict[str, float] = field(default_factory=dict)


class Models:
    """The task's models as the trainer runs them: `models[name]` is the (possibly DDP-wrapped) module to
    call for that model's own loss; `models.raw(name)` is the bare module, for using a model without
    training it in this loss (e.g. the discriminator inside the generator's adversarial loss)."""

    def __init__(self, wrapped: dict[str, nn.Module], raw: dict[str, nn.Module]) -> None:
        self._wrapped = wrapped
        self._raw = raw

    def __getitem__(self, name: str) -> nn.Module:
        return self._wrapped[name]

    def raw(self, name: str) -> nn.Module:
        return self._raw[name]

    def names(self) -> list[str]:
        return list(self._raw)


class Task:
    """Base class of training tasks. Subclasses set `name` and implement the methods that raise."""

    name: str = ""
    supports_distillation: bool = False  # a task that reads `config.distill` (training.distill) sets this

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.task_config: dict[str, Any] = dict(config.task)
        if config.distill and not self.supports_distillation:
            raise ValueError(f"task {self.name!r} does not support distillation: remove the distill: block")

    # ---- what to train ----
    def build_models(self) -> dict[str, nn.Module]:
        """Trainable models keyed by optimizer name (the names of `config.optimizers`)."""
        raise NotImplementedError

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation or None). Items must depend only on (index, epoch), never on global RNG,
        so that resuming and multi-process runs see the same data."""
        raise NotImplementedError

    def collate(self, items: list[Any]) -> Any:
        raise NotImplementedError

    def batch_size_of(self, batch: Any) -> int:
        """Items in a batch (for throughput)."""
        return len(batch)

    def make_batch_sampler(self, dataset: Dataset, batch_size: int, seed: int, rank: int, world_size: int):
        """Override for bucketing; return None to use the trainer's shuffled ResumableBatchSampler."""
        return None

    # ---- the losses ----
    def training_step(self, models: Models, batch: Any, step: int) -> StepOutput:
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, models: Models, batches: Iterable[Any], step: int, sample_dir: Path | None) -> dict[str, float]:
        """Validation figures; write audio samples into `sample_dir` when it is given (rank 0)."""
        return {}

    def on_save(self, models: Models, output_dir: Path, step: int) -> None:
        """Export shippable artifacts (e.g. `save_pretrained`) next to the checkpoints; rank 0 only."""

    def find_unused_parameters(self, name: str) -> bool:
        """Whether DDP must tolerate parameters of model `name` that get no gradient in some steps."""
        return False


_TASKS: dict[str, Callable[[TrainConfig], Task]] = {}


def register_task(name: str):
    """Class decorator: make a Task available as `python -m training <name>`."""

    def wrap(cls):
        cls.name = name
        _TASKS[name] = cls
        return cls

    return wrap


def available_tasks() -> list[str]:
    _load_entry_points()
    return sorted(_TASKS)


def get_task(name: str) -> Callable[[TrainConfig], Task]:
    if name not in _TASKS:
        _load_entry_points(name)
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; available: {', '.join(sorted(_TASKS)) or 'none'}")
    return _TASKS[name]


def _source_checkout_entry_points() -> list[EntryPoint]:
    """The task entry points declared in the pyproject.toml beside this package (none outside a source checkout)."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return []
    import tomllib

    declared = tomllib.loads(pyproject.read_text()).get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in declared.items()]


def _load_entry_points(only: str | None = None) -> None:
    """Import the registered task packages (only the one named `only`, so one broken package spoils no other):
    the installed entry points first, then those of a source checkout's pyproject.toml."""
    for ep in [*entry_points(group=ENTRY_POINT_GROUP), *_source_checkout_entry_points()]:
        if ep.name not in _TASKS and (only is None or ep.name == only):
            cls = ep.load()
            _TASKS.setdefault(ep.name, cls)
