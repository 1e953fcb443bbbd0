"""The generic training engine: trainer, data, distillation, generation (not built yet; imports no model package)."""
