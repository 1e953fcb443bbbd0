"""The semantic head: a small causal LM that reads the quantizer output and predicts the transcript.

Training-only (DESIGN.md: L_sem, weight 20). Its gradient flows into the quantizer and encoder and makes
the tokens carry linguistic content. The LM is a `transformers` Llama built from a config, trained from
scratch; text is UTF-8 bytes, so no tokenizer needs training. Sequence: [audio frames] [task tag] [text] [eos],
cross-entropy on the text and eos positions only. Saved apart from the codec weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

BYTE_VOCAB = 256
PAD_ID = BYTE_VOCAB
EOS_ID = BYTE_VOCAB + 1
TASK_ASR_ID = BYTE_VOCAB + 2  # "transcribe": the only task tag used so far; captioning would add another
VOCAB_SIZE = BYTE_VOCAB + 3


@dataclass
class SemanticHeadConfig:
    hidden_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 1024
    max_text_bytes: int = 256
    max_positions: int = 4096


def encode_text(text: str, max_bytes: int) -> list[int]:
    """Transcript -> byte ids + eos (lower-cased, whitespace collapsed, cut at max_bytes)."""
    data = " ".join(text.lower().split()).encode("utf-8")[:max_bytes]
    return list(data) + [EOS_ID]


class SemanticHead(nn.Module):
    """Quantized frames [B, F, D] + transcripts -> mean cross-entropy over transcript bytes."""

    def __init__(self, input_dim: int, config: SemanticHeadConfig | None = None) -> None:
        super().__init__()
        self.config = config or SemanticHeadConfig()
        c = self.config
        self.audio_proj = nn.Linear(input_dim, c.hidden_size)
        self.lm = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=VOCAB_SIZE,
                hidden_size=c.hidden_size,
                intermediate_size=c.intermediate_size,
                num_hidden_layers=c.num_layers,
                num_attention_heads=c.num_heads,
                num_key_value_heads=c.num_heads,
                max_position_embeddings=c.max_positions,
                pad_token_id=PAD_ID,
                eos_token_id=EOS_ID,
                bos_token_id=TASK_ASR_ID,
                tie_word_embeddings=True,
            )
        )

    def forward(self, quantized: torch.Tensor, frame_lengths: torch.Tensor, texts: list[str | None]) -> torch.Tensor:
        """Loss over the items that have text (0 when none has). Each item's frames are cut to its length."""
        rows = [i for i, t in enumerate(texts) if t]
        if not rows:
            return quantized.new_zeros(())
        embed = self.lm.get_input_embeddings()
        audio = self.audio_proj(quantized[rows])  # [R, F, H]
        seqs, labels = [], []
        for r, i in enumerate(rows):
            n = int(frame_lengths[i])
            ids = torch.tensor([TASK_ASR_ID] + encode_text(texts[i], self.config.max_text_bytes), device=quantized.device)
            seqs.append(torch.cat([audio[r, :n], embed(ids)], dim=0))
            # predict byte k+1 from position k: labels align with the sequence, -100 where nothing is predicted
            labels.append(torch.cat([torch.full((n,), -100, device=ids.device), ids[1:], torch.tensor([-100], device=ids.device)]))
        length = max(s.shape[0] for s in seqs)
        x = torch.stack([F.pad(s, (0, 0, 0, length - s.shape[0])) for s in seqs])
        y = torch.stack([F.pad(l, (0, length - l.shape[0]), value=-100) for l in labels])
        mask = torch.stack([(torch.arange(length, device=x.device) < s.shape[0]).long() for s in seqs])
        logits = self.lm(inputs_embeds=x, attention_mask=mask).logits
        return F.cross_entropy(logits.float().reshape(-1, VOCAB_SIZE), y.reshape(-1), ignore_index=-100)


__all__ = ["SemanticHead", "SemanticHeadConfig", "encode_text"]
