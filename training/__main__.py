"""`python -m training <task> --config FILE [--override key=value ...] [--resume]`; works under torchrun."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import load_config
from .task import available_tasks, get_task
from .trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training", description="Train a registered task.")
    ap.add_argument("task", help="task name (" + ", ".join(available_tasks()) + ")")
    ap.add_argument("--config", help="YAML recipe (see configs/)")
    ap.add_argument("--override", "-o", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="set recipe fields, e.g. max_steps=100 task.crop_seconds=1.0 (repeat -o or list several)")
    ap.add_argument("--resume", nargs="?", const=True, default=False,
                    help="continue from the newest checkpoint in output_dir (or from the given file)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        task_cls = get_task(args.task)
        config = load_config(args.config, args.override, task_name=args.task)
    except (KeyError, ValueError, FileNotFoundError) as e:
        print(f"python -m training: error: {e}", file=sys.stderr)
        return 2
    trainer = Trainer(config, task_cls(config))
    try:
        figures = trainer.fit(resume=args.resume)
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(" ".join(f"{k}={v:.4g}" for k, v in sorted(figures.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
