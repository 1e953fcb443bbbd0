"""The generic training engine: trainer, tasks, data, generation (distillation comes with ASR); imports no model package."""
