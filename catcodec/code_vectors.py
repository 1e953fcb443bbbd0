"""Code embeddings that start from the codec's own code vectors, for the models that read codes (ASR, TTS).

`CATModel.code_vectors(K)` gives what each code adds to the quantized latent; a fixed random orthogonal map
to the reader's width, rescaled to its initialiser's std, turns them into embedding tables. A frame's summed
embedding is then a linear image of the codec's latent: frames that sound alike start alike, not at random.
"""

from __future__ import annotations

import torch


def project_code_vectors(
    vectors: torch.Tensor, levels: int, codebook_size: int, width: int, std: float, seed: int = 0
) -> torch.Tensor:
    """[>= levels, codebook_size, D] code vectors -> [levels, codebook_size, width] embedding tables for the
    first `levels` codebooks: one fixed orthogonal map D -> width (same for every level, so sums stay a linear
    image of the latent), rms `std` overall. ValueError when the vectors do not fit the reading model."""
    if vectors.dim() != 3 or vectors.shape[0] < levels or vectors.shape[1] != codebook_size:
        raise ValueError(f"need [>= {levels}, {codebook_size}, D] code vectors, got {tuple(vectors.shape)}")
    vectors = vectors[:levels]
    k, size, dim = vectors.shape
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(max(dim, width), min(dim, width), generator=g))
    proj = q if dim >= width else q.t()  # [dim, width] with orthonormal columns (or rows)
    table = vectors.reshape(-1, dim).float().cpu() @ proj
    table *= std / table.pow(2).mean().sqrt().clamp_min(1e-12)
    return table.reshape(k, size, width)


def transplant_code_tables(
    tables: list[torch.Tensor], old_vectors: torch.Tensor, new_vectors: torch.Tensor, ridge: float = 1e-2
) -> tuple[list[torch.Tensor], float]:
    """Tables learnt on one codec's codes -> the same tables for another codec's codes.

    `tables[k]` [codebook_size, W] holds one row per code of level k (an embedding, or an output head's rows);
    `old_vectors` / `new_vectors` [>= len(tables), codebook_size, D] are the two codecs' code vectors
    (`CATModel.code_vectors`). One ridge-regularised linear map (with bias) from the old vectors to the learnt
    rows, fitted over all the tables' levels, is applied to the new vectors: a reader whose frame input was a
    linear function of the codec's latent keeps reading the latent through the new codes. Returns the new tables
    and the fit's R^2 (the share of the learnt rows the latent explains; the rest is lost)."""
    levels = len(tables)
    if levels == 0 or old_vectors.shape[0] < levels or new_vectors.shape[0] < levels:
        raise ValueError(f"need code vectors for {levels} levels, got {old_vectors.shape[0]} old and {new_vectors.shape[0]} new")
    if old_vectors.shape[1:] != new_vectors.shape[1:]:
        raise ValueError(f"the two codecs' code vectors differ in shape: {tuple(old_vectors.shape[1:])} vs {tuple(new_vectors.shape[1:])}")
    size = old_vectors.shape[1]
    if any(t.dim() != 2 or t.shape[0] != size for t in tables):
        raise ValueError(f"every table needs {size} rows (one per code), got {[tuple(t.shape) for t in tables]}")

    def with_bias(v: torch.Tensor) -> torch.Tensor:
        v = v[:levels].reshape(-1, v.shape[-1]).double()
        return torch.cat([v, torch.ones(v.shape[0], 1, dtype=v.dtype)], dim=1)

    x, y = with_bias(old_vectors.cpu()), torch.cat([t.detach().cpu().double() for t in tables])
    scale = x.pow(2).mean()  # ridge relative to the vectors' own size
    gram = x.T @ x + ridge * scale * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
    mapping = torch.linalg.solve(gram, x.T @ y)
    residual = (y - x @ mapping).pow(2).sum()
    r2 = float(1.0 - residual / (y - y.mean(0)).pow(2).sum().clamp_min(1e-30))
    new = (with_bias(new_vectors.cpu()) @ mapping).reshape(levels, size, -1)
    return [new[k].to(tables[k]) for k in range(levels)], r2


__all__ = ["project_code_vectors", "transplant_code_tables"]
