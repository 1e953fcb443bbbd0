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


__all__ = ["project_code_vectors"]
