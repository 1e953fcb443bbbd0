"""CAT-ASR: CAT codec frames -> text with one decoder-only Transformer (a prefix language model).

A transformers Llama, trained from scratch, runs over [frame 0 ; ... ; frame F-1 ; BOS ; characters ; EOS]: a
frame's input is the sum of the embeddings of its first n codebooks, a character's its own embedding, and
only the positions from BOS on are trained, each to predict the next character (then the end of text).
Attention is causal everywhere, the audio prefix included (a stock Llama; the transcript could also start
while audio still streams in). Progressive dropout keeps a random number of codebooks per training item, so
one model reads any 1..num_quantizers; SpecAugment-like masks (spans of frames replaced by a learned
embedding, finer codebooks dropped in random frames) keep it from leaning on any one frame or level. With
`ctc_weight` > 0 an auxiliary CTC head on the audio positions (training only; decoding stays autoregressive)
makes the frames' states spell the transcript in order, which teaches a small model to read much sooner.
With `audio_encoder_layers` > 0 the frames first pass a bidirectional Transformer of their own (an
encoder-decoder in all but name): offline transcription does not need causality, and the CTC head reads
those states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import ModelOutput

from catcodec.code_vectors import project_code_vectors, transplant_code_tables
from tts.modeling_tts import LocalFP32Loading, embeddings_llama

from .configuration_asr import CATASRConfig

IGNORE = -100
BOS = 1  # tts.text.CharTokenizer.BOS (after PAD = 0): the position that starts the transcript


@dataclass
class CATASROutput(ModelOutput):
    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None  # [N, text vocab] at the N text positions (item after item)
    labels: torch.LongTensor | None = None  # [N] the character each of them predicts
    text_hidden_states: torch.FloatTensor | None = None  # [N, H] last hidden states there (for distillation)
    # [M, H] the states the audio positions end in (the CTC head's input) at the M real frames, item after item
    audio_hidden_states: torch.FloatTensor | None = None
    ctc_loss: torch.FloatTensor | None = None  # the auxiliary CTC term (already inside `loss`), when enabled


class CATASRPreTrainedModel(LocalFP32Loading, PreTrainedModel):
    config: CATASRConfig
    config_class = CATASRConfig
    base_model_prefix = "asr"
    main_input_name = "codes"


class CATASRModel(CATASRPreTrainedModel):
    def __init__(self, config: CATASRConfig) -> None:
        super().__init__(config)
        c = config
        # one table for all codebooks: code i of level k is row k * codebook_size + i
        self.code_embed = nn.Embedding(c.num_quantizers * c.codebook_size, c.hidden_size)
        self.mask_embed = nn.Parameter(torch.zeros(c.hidden_size))
        self.text_embed = nn.Embedding(c.text_vocab_size, c.hidden_size)
        self.decoder = embeddings_llama(c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size, c.max_positions)
        self.audio_encoder = (
            embeddings_llama(c.hidden_size, c.audio_encoder_layers, c.num_heads, c.intermediate_size, c.max_positions)
            if c.audio_encoder_layers > 0 else None
        )
        self.lm_head = nn.Linear(c.hidden_size, c.text_vocab_size, bias=False)
        if c.ctc_weight > 0:  # each frame's state -> ctc_upsample positions -> characters (blank = padding id 0)
            self.ctc_upsample = nn.Linear(c.hidden_size, c.ctc_upsample * c.hidden_size)
            self.ctc_head = nn.Linear(c.hidden_size, c.text_vocab_size)
        self.post_init()

    # ---- embeddings ----
    @torch.no_grad()
    def init_code_embeddings(self, vectors: torch.Tensor, seed: int = 0) -> None:
        """Start the code embeddings from the codec's code vectors [K, codebook_size, D] (`CATModel.code_vectors`;
        `catcodec.code_vectors.project_code_vectors`): a frame's input is then a linear image of the codec's latent."""
        c = self.config
        table = project_code_vectors(vectors, c.num_quantizers, c.codebook_size, c.hidden_size, c.initializer_range, seed)
        table = table.reshape(-1, c.hidden_size)
        self.code_embed.weight.copy_(table.to(self.code_embed.weight))

    @torch.no_grad()
    def transplant_codes(self, old_vectors: torch.Tensor, new_vectors: torch.Tensor,
                         ridge: float = 1e-2) -> dict[str, float]:
        """Carry the code embeddings from the codes of one codec to another's
        (`catcodec.code_vectors.transplant_code_tables`), for training on a new codec's codes from this model.
        Returns the fit's R^2 (how much of what the embeddings learnt carries over)."""
        c = self.config
        tables = list(self.code_embed.weight.view(c.num_quantizers, c.codebook_size, c.hidden_size))
        new, r2 = transplant_code_tables(tables, old_vectors, new_vectors, ridge)
        self.code_embed.weight.copy_(torch.cat(new))
        return {"code_embed": r2}

    def frame_embedding(self, codes: torch.Tensor, levels: torch.Tensor | int) -> torch.Tensor:
        """codes [B, K', F] -> [B, F, H]: sum of the embeddings of each frame's first `levels` codebooks.

        `levels` is one number, one per item [B], or one per frame [B, F]; K' may be below num_quantizers."""
        b, k, f = codes.shape
        if not 1 <= k <= self.config.num_quantizers:
            raise ValueError(f"codes must have 1..{self.config.num_quantizers} codebooks, got {k}")
        size = self.config.codebook_size
        levels = torch.as_tensor(levels, device=codes.device)
        levels = levels.reshape(-1, 1).expand(b, f) if levels.dim() < 2 else levels
        offsets = torch.arange(k, device=codes.device)[None, :, None] * size
        emb = self.code_embed(codes.clamp(0, size - 1) + offsets)  # [B, K', F, H]
        keep = torch.arange(k, device=codes.device)[None, :, None] < levels[:, None, :]  # [B, K', F]
        return (emb * keep[..., None].to(emb.dtype)).sum(dim=1)

    def encode_frames(self, frames: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """frames [B, F, H] -> [B, F, H] through the bidirectional audio encoder (identity without one).

        Each item attends to its own first frame_lengths[i] frames only, so padding changes nothing."""
        if self.audio_encoder is None:
            return frames
        b, f, _ = frames.shape
        valid = torch.arange(f, device=frames.device)[None] < frame_lengths.to(frames.device)[:, None]  # [B, F]
        mask = valid[:, None, None, :].expand(b, 1, f, f)  # 4-D: transformers uses it as given (no causal part)
        return self.audio_encoder(inputs_embeds=frames, attention_mask=mask).last_hidden_state

    def prompt_embeddings(self, codes: torch.Tensor, frame_lengths: torch.Tensor, num_quantizers: int) -> list[torch.Tensor]:
        """What decoding starts from: per item [frames + 1, H], its (encoded) frames' embeddings then BOS's."""
        frames = self.encode_frames(self.frame_embedding(codes[:, :num_quantizers], num_quantizers), frame_lengths)
        bos = self.text_embed.weight[BOS][None]
        return [torch.cat([frames[i, : int(n)], bos]) for i, n in enumerate(frame_lengths)]

    def as_causal_lm(self) -> "CATASRTextLM":
        """The model seen as a causal LM over characters after an embedded audio prompt (for training.generation)."""
        return CATASRTextLM(self)

    # ---- training ----
    def sample_levels(self, batch: int, max_levels: int, device: torch.device) -> torch.Tensor:
        """Codebooks each item keeps: all, or with probability `progressive_dropout` a uniform 1..max_levels."""
        levels = torch.full((batch,), max_levels, device=device)
        if self.training and self.config.progressive_dropout > 0:
            drop = torch.rand(batch, device=device) < self.config.progressive_dropout
            levels = torch.where(drop, torch.randint(1, max_levels + 1, (batch,), device=device), levels)
        return levels

    def sample_masks(self, levels: torch.Tensor, frame_lengths: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """SpecAugment-like training masks: codebooks kept per frame [B, F] and masked frames [B, F] (bool).

        Each of `time_mask_count` spans is 0..time_mask_max_frames long and at most a quarter of its item."""
        c = self.config
        b, device = levels.shape[0], levels.device
        per_item = levels[:, None].expand(b, num_frames)
        coarser = 1 + (torch.rand(b, num_frames, device=device) * (per_item - 1)).long()  # uniform 1..levels-1
        drop = (torch.rand(b, num_frames, device=device) < c.level_mask_prob) & (per_item > 1)
        frame_levels = torch.where(drop, coarser, per_item)
        masked = torch.zeros(b, num_frames, dtype=torch.bool, device=device)
        if c.time_mask_count and c.time_mask_max_frames:
            lengths = frame_lengths.to(device)[:, None]
            width = torch.randint(0, c.time_mask_max_frames + 1, (b, c.time_mask_count), device=device)
            width = torch.minimum(width, lengths // 4)
            start = (torch.rand(b, c.time_mask_count, device=device) * (lengths - width + 1)).long()
            pos = torch.arange(num_frames, device=device)[None, None]
            masked = ((pos >= start[..., None]) & (pos < (start + width)[..., None])).any(dim=1)
        return frame_levels, masked

    def forward(
        self,
        codes: torch.LongTensor,
        frame_lengths: torch.LongTensor,
        text_ids: torch.LongTensor,
        text_lengths: torch.LongTensor,
        levels: torch.LongTensor | None = None,
        output_hidden_states: bool = False,
    ) -> CATASROutput:
        """Teacher-forced loss on the text only. codes [B, K', F] and text_ids [B, Lt] ([BOS, chars..., EOS])
        right-padded; levels [B] codebooks each item reads (default: random in training, all in eval).
        `output_hidden_states` also returns the last states at the text and the audio positions (distillation)."""
        b, k, f = codes.shape
        device = codes.device
        levels = self.sample_levels(b, k, device) if levels is None else levels.to(device).clamp(1, k)
        if self.training:
            frame_levels, masked = self.sample_masks(levels, frame_lengths, f)
            frames = self.frame_embedding(codes, frame_levels)
            frames = torch.where(masked[..., None], self.mask_embed.to(frames.dtype), frames)
        else:
            frames = self.frame_embedding(codes, levels)
        frames = self.encode_frames(frames, frame_lengths)
        text = self.text_embed(text_ids)
        rows, labels = [], []
        for i in range(b):
            lf, lt = int(frame_lengths[i]), int(text_lengths[i])
            rows.append(torch.cat([frames[i, :lf], text[i, :lt]]))
            label = torch.full((lf + lt,), IGNORE, dtype=torch.long, device=device)
            label[lf : lf + lt - 1] = text_ids[i, 1:lt]  # BOS predicts the first character, the last one EOS
            labels.append(label)
        length = max(r.shape[0] for r in rows)
        x = torch.stack([F.pad(r, (0, 0, 0, length - r.shape[0])) for r in rows])
        label = torch.stack([F.pad(y, (0, length - y.shape[0]), value=IGNORE) for y in labels])
        mask = (label.new_tensor([r.shape[0] for r in rows])[:, None] > torch.arange(length, device=device)).long()
        hidden = self.decoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        text_positions = label != IGNORE
        logits = self.lm_head(hidden[text_positions])
        targets = label[text_positions]
        loss = F.cross_entropy(logits.float(), targets)
        ctc = None
        audio_states = hidden if self.audio_encoder is None else frames  # frames: the encoder's output
        if self.config.ctc_weight > 0:
            ctc = self.ctc_loss(audio_states, frame_lengths, text_ids, text_lengths)
            loss = loss + self.config.ctc_weight * ctc
        audio_hidden = None
        if output_hidden_states:
            real_frames = torch.arange(f, device=device)[None] < frame_lengths.to(device)[:, None]  # [B, F]
            audio_hidden = audio_states[:, :f][real_frames]
        return CATASROutput(
            loss=loss,
            ctc_loss=ctc,
            logits=logits,
            labels=targets,
            text_hidden_states=hidden[text_positions] if output_hidden_states else None,
            audio_hidden_states=audio_hidden,
        )

    def ctc_loss(self, hidden: torch.Tensor, frame_lengths: torch.Tensor, text_ids: torch.Tensor,
                 text_lengths: torch.Tensor) -> torch.Tensor:
        """CTC of the transcript (characters between BOS and EOS) from the audio positions' states (the decoder's
        last hidden states at positions 0..frames-1, or the audio encoder's output), each frame emitting
        `ctc_upsample` positions."""
        u = self.config.ctc_upsample
        log_probs = self.ctc_log_probs_from_states(hidden[:, : int(frame_lengths.max())]).transpose(0, 1)  # [T, B, V]
        targets = text_ids[:, 1:]
        target_lengths = (text_lengths - 2).clamp(min=0)  # without BOS and EOS
        return F.ctc_loss(log_probs, targets, frame_lengths * u, target_lengths, blank=0, zero_infinity=True)

    def ctc_log_probs_from_states(self, hidden: torch.Tensor) -> torch.Tensor:
        """Audio positions' states [B, F, H] -> CTC log-probabilities [B, F * ctc_upsample, V] (blank = id 0)."""
        if self.config.ctc_weight <= 0:
            raise ValueError("this CAT-ASR was trained without a CTC head (ctc_weight 0)")
        b, f, h = hidden.shape
        up = F.gelu(self.ctc_upsample(hidden)).reshape(b, f * self.config.ctc_upsample, h)
        return F.log_softmax(self.ctc_head(up).float(), dim=-1)

    @torch.no_grad()
    def ctc_log_probs(self, codes: torch.Tensor, frame_lengths: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """codes [B, K', F] (right-padded) -> CTC log-probabilities [B, F * ctc_upsample, V] of the audio
        positions, as in training (the decoder's causal states over the frames, or the audio encoder's)."""
        frames = self.encode_frames(self.frame_embedding(codes[:, :num_quantizers], num_quantizers), frame_lengths)
        if self.audio_encoder is None:
            valid = (torch.arange(codes.shape[-1], device=codes.device)[None] < frame_lengths.to(codes.device)[:, None])
            frames = self.decoder(inputs_embeds=frames, attention_mask=valid.long()).last_hidden_state
        return self.ctc_log_probs_from_states(frames)


class CATASRTextLM:
    """A `CATASRModel` as `training.generation` drives a causal LM: prompts of embeddings, then character ids.

    Returns the logits of the last position only, with padding and BOS ruled out (no transcript contains them)."""

    def __init__(self, model: CATASRModel) -> None:
        self.model = model

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.text_embed

    def __call__(self, input_ids=None, inputs_embeds=None, attention_mask=None, position_ids=None, cache=None,
                 use_cache=False) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.model.text_embed(input_ids)
        out = self.model.decoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                                 cache=cache, use_cache=use_cache)
        logits = self.model.lm_head(out.last_hidden_state[:, -1:]).float()
        logits[..., : BOS + 1] = float("-inf")
        return CausalLMOutputWithPast(logits=logits, cache=out.cache)


__all__ = ["CATASRModel", "CATASROutput", "CATASRPreTrainedModel", "CATASRTextLM"]
