"""GPT-2 forward on the model's own weights, with a KV cache of fixed slots.

Why not `model(input_ids, past_key_values=...)`: with continuous batching the
batch changes at every step (sequences join and leave, each at its own
position). Here every running sequence owns one slot of a preallocated cache
(L, S, H, T_max, D) and its own position counter, so nothing is padded and a
sequence's keys never mix with another's: the attention mask only hides the
unused tail of each slot. Running sequences occupy slots 0..B-1 (the engine
compacts on removal), so a decode step reads plain views of the cache.

Shapes: B batch, T time, C channels, H heads, D head size, V vocabulary,
L layers, S slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
    "gelu_fast": "tanh",
    "gelu": "none",
}


class UnsupportedModel(ValueError):
    """The model is not a plain GPT-2; use the Hugging Face path instead."""


class Block(nn.Module):
    """One transformer block; Conv1D weights (in, out) become nn.Linear (out, in)."""

    def __init__(self, hf_block: Any, eps: float) -> None:
        super().__init__()
        self.ln_1 = _layer_norm(hf_block.ln_1, eps)
        self.ln_2 = _layer_norm(hf_block.ln_2, eps)
        self.qkv = _linear(hf_block.attn.c_attn)
        self.attn_out = _linear(hf_block.attn.c_proj)
        self.fc = _linear(hf_block.mlp.c_fc)
        self.proj = _linear(hf_block.mlp.c_proj)


class GPT2Engine(nn.Module):
    """The weights and the two forward passes the engine needs: prefill and decode."""

    def __init__(self, hf_model: Any) -> None:
        super().__init__()
        config = hf_model.config
        _check_supported(config)
        transformer = hf_model.transformer
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.n_positions = config.n_positions
        self.vocab_size = config.vocab_size
        self.approximate = _ACTIVATIONS[config.activation_function]
        self.wte = nn.Parameter(transformer.wte.weight.detach().clone(), requires_grad=False)
        self.wpe = nn.Parameter(transformer.wpe.weight.detach().clone(), requires_grad=False)
        eps = config.layer_norm_epsilon
        self.blocks = nn.ModuleList(Block(b, eps) for b in transformer.h)
        self.ln_f = _layer_norm(transformer.ln_f, eps)
        head = hf_model.get_output_embeddings()
        self.lm_head = nn.Linear(self.n_embd, self.vocab_size, bias=False)
        self.lm_head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        self.kv_dtype: torch.dtype | None = None  # None: the weights' dtype (see quant.py)
        # decode's attention over an fp32 cache: kernels.decode_attention on the int8 path
        self.attention: Callable[..., torch.Tensor] | None = None
        self.fused: Any = None  # kernels.FusedDecode: whole blocks per call at few rows
        self.eval()

    @property
    def dtype(self) -> torch.dtype:
        return self.wte.dtype

    @property
    def device(self) -> torch.device:
        return self.wte.device

    @property
    def cache_dtype(self) -> torch.dtype:
        """The KV cache's dtype; attention runs in it (queries are cast to it)."""
        return self.kv_dtype or self.dtype

    def new_cache(self, slots: int, max_len: int | None = None) -> KVCache:
        return KVCache(
            len(self.blocks),
            slots,
            self.n_head,
            max_len or self.n_positions,
            self.n_embd // self.n_head,
            self.cache_dtype,
            self.device,
        )

    @torch.inference_mode()
    def prefill(
        self,
        ids: torch.Tensor,
        cache: KVCache,
        slot: int,
        start: int = 0,
        hidden: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Prompt ids (T,) into `slot` after `start` cached positions; last logits (V,) in fp32.

        With `hidden` (T_max, C), the unit final hidden states of the new positions are
        written into it (the story cache's keys)."""
        T = ids.shape[0]
        x = (self.wte[ids] + self.wpe[start : start + T]).unsqueeze(0)  # (1, T, C)
        mask = None
        if start:  # new token i sees the cached prefix and new tokens up to itself
            q_pos = torch.arange(T, device=ids.device)[:, None] + start
            mask = torch.arange(start + T, device=ids.device)[None, :] <= q_pos  # (T, start+T)
        for layer, block in enumerate(self.blocks):
            q, k, v = self._qkv(block, x)  # each (1, H, T, D)
            cache.k[layer, slot, :, start : start + T] = k[0]  # in the cache's dtype
            cache.v[layer, slot, :, start : start + T] = v[0]
            if start:
                keys = cache.k[layer, slot : slot + 1, :, : start + T]  # (1, H, start+T, D)
                values = cache.v[layer, slot : slot + 1, :, : start + T]
                y = F.scaled_dot_product_attention(q.to(keys.dtype), keys, values, attn_mask=mask)
            else:  # a fresh prompt attends in the weights' dtype (bf16 was slower here)
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (1, H, T, D)
            x = self._finish_block(block, x, y.to(x.dtype))
        if hidden is not None:
            hidden[start : start + T] = F.normalize(self.ln_f(x[0]).float(), dim=-1)
        last = self.ln_f(x[:, -1])  # (1, C)
        return self.lm_head(last)[0].float()  # (V,)

    @torch.inference_mode()
    def decode(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        hidden: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One step for slots 0..B-1: token (B,) at position (B,) each; logits (B, V) in fp32.
        With `hidden` (S, T_max, C), each row's unit final hidden state is written at its
        position."""
        B = tokens.shape[0]
        rows = torch.arange(B, device=tokens.device)
        x = (self.wte[tokens] + self.wpe[positions]).unsqueeze(1)  # (B, 1, C)
        kv_dtype = cache.kv.dtype
        own = kv_dtype == torch.float32 and cache.kv.is_cpu  # the engine's kernels read this
        if own and self.fused is not None and self.fused.max_rows >= B:  # whole blocks there
            x = self.fused.run(x[:, 0].contiguous(), cache.kv, positions).unsqueeze(1)
            return self._head(x, rows, positions, hidden)
        attention = self.attention if own else None
        lengths, t_max, mask = positions + 1, 0, None
        if attention is None:  # SDPA over views up to the longest row, masked per row
            t_max = int(positions.max()) + 1
            # No mask when every row is at the last position (one writer, or a batch that
            # started together).
            if B > 1 and bool((positions != t_max - 1).any()):
                keep = torch.arange(t_max, device=tokens.device)[None, :] <= positions[:, None]
                mask = keep[:, None, None, :]  # (B, 1, 1, T)
        H, S, T_max = self.n_head, cache.slots, cache.max_len
        D = self.n_embd // H
        # Row (j, b, h, positions[b]) of a layer's cache (j: 0 keys, 1 values) seen as
        # (2 * S * H * T_max, D), listed in the order (b, j, h) of the qkv output's k and v.
        j = torch.arange(2, device=tokens.device)
        heads = torch.arange(H, device=tokens.device)
        flat = ((j[None, :, None] * S + rows[:, None, None]) * H + heads[None, None, :]) * T_max
        flat = (flat + positions[:, None, None]).flatten()  # (B * 2 * H,)
        for layer, block in enumerate(self.blocks):
            qkv = block.qkv(block.ln_1(x)).to(kv_dtype).view(B, 3, H, D)
            cache.kv[layer].view(-1, D).index_copy_(0, flat, qkv[:, 1:].reshape(B * 2 * H, D))
            q = qkv[:, 0].unsqueeze(2)  # (B, H, 1, D)
            if attention is not None:  # each row over its own length: no mask
                y = attention(q, cache.kv[layer], lengths)
            else:
                keys = cache.kv[layer, 0, :B, :, :t_max]  # (B, H, T, D) view
                values = cache.kv[layer, 1, :B, :, :t_max]
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, H, 1, D)
            x = self._finish_block(block, x, y.to(x.dtype))
        return self._head(x, rows, positions, hidden)

    def _head(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        hidden: torch.Tensor | None,
    ) -> torch.Tensor:
        last = self.ln_f(x[:, 0])  # (B, C)
        if hidden is not None:
            hidden[rows, positions] = F.normalize(last.float(), dim=-1)
        return self.lm_head(last).float()  # (B, V)

    def _qkv(self, block: Block, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        B, T, C = x.shape
        qkv = block.qkv(block.ln_1(x))  # (B, T, 3C)
        heads = qkv.view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        return heads[0], heads[1], heads[2]  # (B, H, T, D) each

    def _finish_block(self, block: Block, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        B, H, T, D = y.shape
        x = x + block.attn_out(y.transpose(1, 2).reshape(B, T, H * D))  # (B, T, C)
        hidden = F.gelu(block.fc(block.ln_2(x)), approximate=self.approximate)  # (B, T, 4C)
        return x + block.proj(hidden)

    @torch.inference_mode()
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for whole sequences, no cache (perplexity checks)."""
        B, T = ids.shape
        x = self.wte[ids] + self.wpe[:T]  # (B, T, C)
        for block in self.blocks:  # attention in the cache's dtype, as decode runs it
            q, k, v = (t.to(self.cache_dtype) for t in self._qkv(block, x))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = self._finish_block(block, x, y.to(x.dtype))
        return self.lm_head(self.ln_f(x)).float()


class KVCache:
    """Keys and values of every slot: kv of shape (L, 2, S, H, T_max, D); k and v are its
    halves (L, S, H, T_max, D). One tensor, so a decode step writes both with one copy."""

    def __init__(
        self,
        layers: int,
        slots: int,
        heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (layers, 2, slots, heads, max_len, head_dim)
        self.kv = torch.zeros(shape, dtype=dtype, device=device)
        self.k, self.v = self.kv[:, 0], self.kv[:, 1]
        self.slots = slots
        self.max_len = max_len

    def save(self, slot: int, length: int) -> torch.Tensor:
        """A copy of the first `length` positions of a slot: (L, 2, H, length, D)."""
        return self.kv[:, :, slot, :, :length].clone()

    def load(self, slot: int, kv: torch.Tensor, length: int) -> None:
        """Put the first `length` positions of saved keys and values into a slot."""
        self.kv[:, :, slot, :, :length] = kv[:, :, :, :length]

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy the first `length` positions of slot src into slot dst (compaction)."""
        self.kv[:, :, dst, :, :length] = self.kv[:, :, src, :, :length]


def _check_supported(config: Any) -> None:
    if getattr(config, "model_type", "") != "gpt2":
        raise UnsupportedModel(f"model type {getattr(config, 'model_type', '?')!r} is not gpt2")
    if config.activation_function not in _ACTIVATIONS:
        raise UnsupportedModel(f"activation {config.activation_function!r}")
    if getattr(config, "scale_attn_by_inverse_layer_idx", False):
        raise UnsupportedModel("scale_attn_by_inverse_layer_idx")
    if not getattr(config, "scale_attn_weights", True):
        raise UnsupportedModel("unscaled attention")
    if getattr(config, "add_cross_attention", False):
        raise UnsupportedModel("cross attention")


def _linear(conv: Any) -> nn.Linear:
    """transformers' Conv1D (weight (in, out)) or nn.Linear as an nn.Linear copy."""
    weight = conv.weight.detach() if isinstance(conv, nn.Linear) else conv.weight.detach().t()
    out_features, in_features = weight.shape
    linear = nn.Linear(in_features, out_features, bias=conv.bias is not None)
    linear.weight = nn.Parameter(weight.contiguous().clone(), requires_grad=False)
    if conv.bias is not None:
        linear.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
    return linear


def _layer_norm(ln: nn.LayerNorm, eps: float) -> nn.LayerNorm:
    copy = nn.LayerNorm(ln.weight.shape[0], eps=eps)
    copy.load_state_dict(ln.state_dict())
    copy.requires_grad_(False)
    return copy
