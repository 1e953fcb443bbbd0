"""CAT-TTS: text -> CAT codec frames, autoregressively, with a temporal and a depth Transformer.

Temporal Transformer (a transformers Llama, trained from scratch) runs over [text characters ; start-of-audio ;
frame 0 ; frame 1 ; ...], a frame's input being the sum of its codebooks' embeddings. Its output at the
position before frame t conditions the depth Transformer, which predicts frame t's codebooks coarse to fine
(Moshi's RQ-Transformer): position 0 reads the temporal state, position k also reads codebook k-1, and
position k predicts codebook k. Codebook 0 has one extra class, end of speech, so the length is predicted.
Progressive sequence dropout keeps only the first K codebooks of some training items (input and loss), so
the same model synthesises at any 1..num_quantizers codebooks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaModel, PreTrainedModel
from transformers.utils import ModelOutput

from catcodec.code_vectors import project_code_vectors, transplant_code_tables

from .alignment import eager_attention, guided_attention_loss
from .configuration_tts import CATTTSConfig

IGNORE = -100


def embeddings_llama(hidden: int, layers: int, heads: int, intermediate: int, positions: int) -> LlamaModel:
    """A transformers Llama trained from scratch whose inputs are always embeddings the caller makes (TTS, ASR)."""
    return LlamaModel(
        LlamaConfig(
            vocab_size=1,  # never used: inputs_embeds only
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=positions,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
    )


@dataclass
class CATTTSOutput(ModelOutput):
    loss: torch.FloatTensor | None = None
    loss_per_level: torch.FloatTensor | None = None  # [K] mean cross-entropy of each codebook
    logits: list[torch.FloatTensor] | None = None  # per level [N, classes] over the predicted frames
    attention_penalty: torch.FloatTensor | None = None  # off-diagonal share of frames' text attention (tts.alignment)
    attentions: tuple[torch.FloatTensor, ...] | None = None  # temporal model, per layer [B, heads, L, L]


class LocalFP32Loading:
    """`from_pretrained` for the project's models: a local folder only (never the hub), computed in fp32 unless
    asked, whatever the stored dtype (shipped weights are bf16). Mix in before `PreTrainedModel`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        kwargs.setdefault("local_files_only", True)
        kwargs.setdefault("dtype", torch.float32)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)


class CATTTSPreTrainedModel(LocalFP32Loading, PreTrainedModel):
    config: CATTTSConfig
    config_class = CATTTSConfig
    base_model_prefix = "tts"
    main_input_name = "text_ids"


class CATTTSModel(CATTTSPreTrainedModel):
    def __init__(self, config: CATTTSConfig) -> None:
        super().__init__(config)
        c = config
        self.text_embed = nn.Embedding(c.text_vocab_size, c.hidden_size)
        self.code_embeds = nn.ModuleList(nn.Embedding(c.codebook_size, c.hidden_size) for _ in range(c.num_quantizers))
        self.audio_start = nn.Parameter(torch.zeros(c.hidden_size))
        self.temporal = embeddings_llama(c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size, c.max_positions)
        self.depth_in = nn.Linear(c.hidden_size, c.depth_hidden_size, bias=False)
        self.depth_code_embeds = nn.ModuleList(
            nn.Embedding(c.codebook_size, c.depth_hidden_size) for _ in range(max(0, c.num_quantizers - 1))
        )
        self.depth = embeddings_llama(c.depth_hidden_size, c.depth_num_layers, c.depth_num_heads, c.depth_intermediate_size,
                            c.num_quantizers)
        self.heads = nn.ModuleList(
            nn.Linear(c.depth_hidden_size, c.codebook_size + (1 if k == 0 else 0), bias=False)
            for k in range(c.num_quantizers)
        )
        self.post_init()

    # ---- embeddings ----
    @torch.no_grad()
    def init_code_embeddings(self, vectors: torch.Tensor, seed: int = 0) -> None:
        """Start the code embeddings of both Transformers from the codec's code vectors [K, codebook_size, D]
        (`CATModel.code_vectors`; `catcodec.code_vectors.project_code_vectors`): the temporal model's frame
        input becomes a linear image of the codec's latent, and the depth model's code inputs the same at its width."""
        c = self.config
        temporal = project_code_vectors(vectors, c.num_quantizers, c.codebook_size, c.hidden_size, c.initializer_range, seed)
        for k, embed in enumerate(self.code_embeds):
            embed.weight.copy_(temporal[k].to(embed.weight))
        depth = project_code_vectors(vectors, c.num_quantizers, c.codebook_size, c.depth_hidden_size, c.initializer_range, seed + 1)
        for k, embed in enumerate(self.depth_code_embeds):  # depth input k carries the code of level k
            embed.weight.copy_(depth[k].to(embed.weight))

    @torch.no_grad()
    def transplant_codes(self, old_vectors: torch.Tensor, new_vectors: torch.Tensor,
                         ridge: float = 1e-2) -> dict[str, float]:
        """Carry every table indexed by code (the temporal and depth code embeddings, the heads' code rows) from
        the codes of one codec to another's (`catcodec.code_vectors.transplant_code_tables`), for training on a
        new codec's codes from this model. Returns each group's R^2 (how much of what it learnt carries over)."""
        fits = {}
        groups = {"code_embeds": [e.weight for e in self.code_embeds],
                  "depth_code_embeds": [e.weight for e in self.depth_code_embeds]}
        size = self.config.codebook_size
        for name, weights in groups.items():
            if weights:
                new, fits[name] = transplant_code_tables(list(weights), old_vectors, new_vectors, ridge)
                for weight, table in zip(weights, new):
                    weight.copy_(table)
        for k, head in enumerate(self.heads):  # each head is its own function of the depth state: one map per head
            (new,), fits[f"heads.{k}"] = transplant_code_tables([head.weight[:size]], old_vectors[k:], new_vectors[k:],
                                                                      ridge)
            head.weight[:size] = new  # level 0's end-of-speech row stays
        return fits

    def frame_embedding(self, codes: torch.Tensor, levels: torch.Tensor | int) -> torch.Tensor:
        """codes [B, K, F] -> [B, F, H]: sum of the embeddings of each item's first `levels` codebooks."""
        b, k, f = codes.shape
        levels = torch.as_tensor(levels, device=codes.device).expand(b)
        out = codes.new_zeros((b, f, self.config.hidden_size), dtype=self.audio_start.dtype)
        for i in range(k):
            keep = (levels > i).to(out.dtype)[:, None, None]
            out = out + self.code_embeds[i](codes[:, i].clamp_min(0)) * keep
        return out

    def temporal_positions(self, text_length: int, num_frames: int, chars_per_frame: float | None = None,
                           device: torch.device | None = None, text_offset: float = 0.0) -> torch.Tensor:
        """Rotary positions [text_length + 1 + num_frames] of one [text ; start of audio ; frames] sequence: one
        after another, or with `aligned_positions` the text spaced at `chars_per_frame` (default: the config's)
        so that frame t sits at the position of the characters it speaks. `text_offset` (frames) moves the text
        later: a voice prompt without its transcript comes first, so the text starts where the new frames do."""
        total = text_length + 1 + num_frames
        if not self.config.aligned_positions:
            return torch.arange(total, dtype=torch.float32, device=device)
        rate = chars_per_frame or self.config.chars_per_frame
        text = text_offset + torch.arange(text_length, dtype=torch.float32, device=device) / rate
        return torch.cat([text, torch.arange(num_frames + 1, dtype=torch.float32, device=device)])

    def item_rates(self, text_lengths: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Each item's own speaking rate [B] (characters without BOS / EOS per frame), scaled in training by
        exp(rate_jitter x N(0, 1)): at synthesis the rate is only an estimate (the prompt's, or the default)."""
        rates = (text_lengths.float() - 2).clamp_min(1) / frame_lengths.float().clamp_min(1)
        if self.training and self.config.rate_jitter > 0:
            rates = rates * torch.exp(self.config.rate_jitter * torch.randn_like(rates))
        return rates

    def _sequences(self, text_ids, text_lengths, codes, frame_lengths, levels, chars_per_frame=None, text_offsets=None):
        """Right-padded temporal inputs [B, L, H], mask [B, L], rotary positions [B, L] (None: one after another)
        and each item's first prediction position. `text_offsets` [B]: frames of an audio-only voice prompt that
        come before each item's text (its rate counts the frames after them; the text is placed from there)."""
        text = self.text_embed(text_ids)
        frames = self.frame_embedding(codes, levels)
        if self.training and self.config.frame_dropout > 0:  # whole frames' inputs gone, their targets kept
            keep = torch.rand(frames.shape[:2], device=frames.device) >= self.config.frame_dropout
            frames = frames * keep[..., None].to(frames.dtype)
        offsets = torch.zeros_like(frame_lengths) if text_offsets is None else text_offsets.to(frame_lengths.device)
        rates = None
        if self.config.aligned_positions:
            spoken = frame_lengths - offsets
            rates = (self.item_rates(text_lengths, spoken) if chars_per_frame is None else chars_per_frame).tolist()
        rows, positions, starts = [], [], []
        for i in range(text_ids.shape[0]):
            lt, lf = int(text_lengths[i]), int(frame_lengths[i])
            rows.append(torch.cat([text[i, :lt], self.audio_start[None], frames[i, :lf]], dim=0))
            positions.append(self.temporal_positions(lt, lf, rates[i] if rates else None, text.device,
                                                     text_offset=float(offsets[i])))
            starts.append(lt)
        length = max(r.shape[0] for r in rows)
        x = torch.stack([F.pad(r, (0, 0, 0, length - r.shape[0])) for r in rows])
        mask = torch.stack([(torch.arange(length, device=x.device) < r.shape[0]).long() for r in rows])
        position_ids = torch.stack([F.pad(p, (0, length - p.shape[0])) for p in positions]) if rates else None
        return x, mask, position_ids, starts

    # ---- depth ----
    def depth_logits(self, context: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """context [N, H] (temporal states) and teacher codes [N, K'] -> per level k < K' logits [N, classes].

        K' may be below num_quantizers; codes[:, k] feeds position k + 1. Generation steps through
        `tts.depth_decoding.DepthStepper` instead (same logits, one position and one head at a time)."""
        k_used = codes.shape[1]
        inputs = [self.depth_in(context)[:, None]]
        for k in range(k_used - 1):
            inputs.append(self.depth_code_embeds[k](codes[:, k].clamp_min(0))[:, None])
        hidden = self.depth(inputs_embeds=torch.cat(inputs, dim=1)).last_hidden_state
        return [self.heads[k](hidden[:, k]) for k in range(k_used)]

    # ---- training ----
    def sample_levels(self, batch: int, device: torch.device) -> torch.Tensor:
        """Codebooks each item keeps: all, or with probability `progressive_dropout` a uniform 1..K."""
        k = self.config.num_quantizers
        levels = torch.full((batch,), k, device=device)
        if self.training and self.config.progressive_dropout > 0:
            drop = torch.rand(batch, device=device) < self.config.progressive_dropout
            levels = torch.where(drop, torch.randint(1, k + 1, (batch,), device=device), levels)
        return levels

    def forward(
        self,
        text_ids: torch.LongTensor,
        text_lengths: torch.LongTensor,
        codes: torch.LongTensor,
        frame_lengths: torch.LongTensor,
        levels: torch.LongTensor | None = None,
        output_attentions: bool = False,
        guide: bool = True,
        chars_per_frame: torch.Tensor | None = None,
        text_offsets: torch.LongTensor | None = None,
    ) -> CATTTSOutput:
        """Teacher-forced loss. text_ids [B, Lt] and codes [B, K, F] right-padded; levels [B] codebooks kept.

        In training with `guided_attention_weight` > 0 (and `guide`: a recipe may stop guiding once aligned) the
        loss adds the guided attention penalty; with `output_attentions` the output carries the temporal model's
        attention weights and that penalty. `chars_per_frame` [B] sets the rates of `aligned_positions` (default:
        each item's own, jittered in training). `text_offsets` [B] (default 0): frames of a voice prompt given
        without its transcript at the start of each item's codes; the text is placed, and guided, after them."""
        c = self.config
        if codes.shape[1] != c.num_quantizers:
            raise ValueError(f"codes must have {c.num_quantizers} codebooks, got {codes.shape[1]}")
        b = text_ids.shape[0]
        levels = self.sample_levels(b, text_ids.device) if levels is None else levels.to(text_ids.device)
        x, mask, position_ids, starts = self._sequences(text_ids, text_lengths, codes, frame_lengths, levels,
                                                        chars_per_frame, text_offsets)
        guided = self.training and c.guided_attention_weight > 0 and guide
        penalty = None
        if guided or output_attentions:
            with eager_attention(self.temporal):
                temporal = self.temporal(inputs_embeds=x, attention_mask=mask, position_ids=position_ids,
                                         output_attentions=True)
            penalty = guided_attention_loss(temporal.attentions, starts, frame_lengths, c.guided_attention_sigma,
                                            c.guided_attention_heads, text_offsets)
        else:
            temporal = self.temporal(inputs_embeds=x, attention_mask=mask, position_ids=position_ids)
        hidden = temporal.last_hidden_state
        contexts, targets, item_levels = [], [], []
        for i in range(b):
            lf = int(frame_lengths[i])
            contexts.append(hidden[i, starts[i] : starts[i] + lf + 1])  # predicts frames 0..lf-1, then the end
            target = torch.full((lf + 1, c.num_quantizers), IGNORE, dtype=torch.long, device=codes.device)
            target[:lf] = codes[i, :, :lf].t()
            target[lf, 0] = c.end_of_speech_id
            targets.append(target)
            item_levels.append(levels[i].expand(lf + 1))
        context, target, level = torch.cat(contexts), torch.cat(targets), torch.cat(item_levels)
        teacher = target.clamp_min(0).clamp_max(c.codebook_size - 1)
        logits = self.depth_logits(context, teacher)
        per_level, total, count = [], context.new_zeros(()), 0
        for k, lg in enumerate(logits):
            y = torch.where(level > k, target[:, k], torch.full_like(target[:, k], IGNORE))
            valid = int((y != IGNORE).sum())
            loss_k = F.cross_entropy(lg.float(), y, ignore_index=IGNORE, reduction="sum")
            per_level.append(loss_k / max(valid, 1))
            total, count = total + loss_k, count + valid
        loss = total / max(count, 1)
        if guided:
            loss = loss + c.guided_attention_weight * penalty
        return CATTTSOutput(loss=loss, loss_per_level=torch.stack(per_level).detach(), logits=logits,
                            attention_penalty=None if penalty is None else penalty.detach(),
                            attentions=temporal.attentions if output_attentions else None)


__all__ = ["CATTTSModel", "CATTTSOutput", "CATTTSPreTrainedModel"]
