"""Run under `torchrun --nproc_per_node 2` by tests/test_ddp.py: trains the codec task on a tiny recipe and
dumps every rank's weights after phase 1 (reconstruction only) and after the adversarial steps."""

from __future__ import annotations

import os
import sys

import torch

from training.config import load_config
from training.task import get_task
from training.trainer import Trainer


def main(recipe: str, out_dir: str, phase1_steps: int) -> None:
    torch.set_num_threads(1)
    config = load_config(recipe)
    trainer = Trainer(config, get_task("codec")(config))
    rank = trainer.dist.rank
    trainer.fit(until_step=phase1_steps)
    torch.save({k: v.detach().clone() for k, v in trainer.raw_models["generator"].state_dict().items()},
               os.path.join(out_dir, f"phase1_rank{rank}.pt"))
    trainer.fit()
    state = {f"{name}.{k}": v.detach().clone() for name, m in trainer.raw_models.items() for k, v in m.state_dict().items()}
    torch.save(state, os.path.join(out_dir, f"final_rank{rank}.pt"))
    trainer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
