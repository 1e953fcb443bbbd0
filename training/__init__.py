"""The generic training engine: trainer, tasks, data, generation, distillation; imports no model package."""
