"""Lesson 07 — a small causal transformer over characters (nanoGPT-style), and sampling from it.

Read top to bottom: :class:`CausalSelfAttention` → :class:`FeedForward` → :class:`Block` →
:class:`CharTransformer`, then :func:`generate`.

Shapes and units:

* ``idx: (B, L) int64`` — character ids, ``0 ≤ id < vocab_size``, ``L ≤ block_size``.
* ``logits: (B, L, V) float32`` — at position ``i`` the model's scores for the character
  at position ``i + 1``; ``log_softmax(logits)`` are log-probabilities in nats.

The model is *causal*: position ``i`` sees positions ``0 … i`` only, so one forward pass
over a window of ``L`` characters gives ``L`` next-character predictions at once — which is
why token-level distillation compares two distributions at *every* position.

Sampling re-uses the keys and values computed for earlier positions (a "KV cache"),
so each new character costs one position, not a whole window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LMConfig:
    """The size of a :class:`CharTransformer`. ``n_embd`` must be divisible by ``n_head``."""

    vocab_size: int
    block_size: int  # the longest context, in characters
    n_layer: int
    n_head: int
    n_embd: int

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LMConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    def as_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of the positions seen so far, one ``(k, v)`` pair per layer, each
    ``(B, n_head, S, head_dim)``. ``length`` is ``S``, the number of cached positions."""

    def __init__(self, n_layer: int):
        self.layers: list = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.layers[0] is None else self.layers[0][0].shape[2]

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's ``k, v`` to layer ``layer``'s cache; return all keys and values so far."""
        if self.layers[layer] is not None:
            k = torch.cat([self.layers[layer][0], k], dim=2)
            v = torch.cat([self.layers[layer][1], v], dim=2)
        self.layers[layer] = (k, v)
        return k, v


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``i`` attends to positions ``≤ i`` only."""

    def __init__(self, cfg: LMConfig, layer: int):
        super().__init__()
        self.n_head, self.layer = cfg.n_head, layer
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # queries, keys, values in one matmul
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d)
        if cache is not None:
            k, v = cache.extend(self.layer, k, v)  # (B, h, S, d): the earlier positions too
        S = k.shape[2]
        if S == L:  # no earlier positions: the usual causal (lower-triangular) mask
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # the L new positions are the last L of S: each sees everything up to itself
            mask = torch.ones(L, S, dtype=torch.bool, device=x.device).tril(diagonal=S - L)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, C))


class FeedForward(nn.Module):
    """Position-wise feed-forward network: ``n_embd → 4·n_embd → GELU → n_embd``."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.fc, self.proj = nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, cfg: LMConfig, layer: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.n_embd), CausalSelfAttention(cfg, layer)
        self.ln2, self.mlp = nn.LayerNorm(cfg.n_embd), FeedForward(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """A character-level GPT: token + position embeddings, ``n_layer`` blocks, a final norm and
    a linear read-out that shares its weights with the token embedding (weight tying).

    ``forward(idx (B, L) int64, cache=None) → logits (B, L, V) float32``. With a
    :class:`KVCache` the positions of ``idx`` continue those already in the cache.
    """

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied: one (V, n_embd) matrix reads and writes characters
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if idx.ndim != 2 or idx.dtype != torch.int64:
            raise ValueError(f"idx must be a (B, L) int64 tensor of character ids, got {tuple(idx.shape)} {idx.dtype}")
        start = 0 if cache is None else cache.length
        L = idx.shape[1]
        if start + L > self.cfg.block_size:
            raise ValueError(f"{start + L} positions exceed the model's block_size {self.cfg.block_size}")
        pos = torch.arange(start, start + L, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x, cache)
        return self.head(self.ln_f(x)).float()


def build_lm(cfg: LMConfig, seed: int | None = None) -> CharTransformer:
    """A new :class:`CharTransformer`; with ``seed`` its initial weights are fixed by that seed."""
    if seed is None:
        return CharTransformer(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharTransformer(cfg)


# --------------------------------------------------------------------------- sampling
@torch.no_grad()
def generate(model: CharTransformer, prompt: torch.Tensor, n_new: int, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue each row of ``prompt (B, P) int64`` by ``n_new`` sampled characters.

    Each character is drawn from ``softmax(logits / temperature)`` of the last position;
    the KV cache makes each step cost one position. When the context reaches ``block_size``
    the cache starts again from the last ``block_size // 2`` characters, so a long sample
    always sees at least half a block of context (exactly what it would see without a
    cache as long as ``P + n_new − 1 ≤ block_size``: the last sample is never fed back).

    Returns:
        ``(B, P + n_new) int64``: the prompt followed by the samples.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if n_new < 0 or prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(f"need a (B, P ≥ 1) prompt and n_new ≥ 0, got {tuple(prompt.shape)} and {n_new}")
    was_training = model.training
    model.eval()
    block, n_layer = model.cfg.block_size, model.cfg.n_layer
    out, cache = prompt, KVCache(n_layer)
    step_in = prompt[:, -block:]
    for _ in range(n_new):
        if cache.length + step_in.shape[1] > block:  # context full: start again from its last half
            cache, step_in = KVCache(n_layer), out[:, -(block // 2):]
        logits = model(step_in, cache)[:, -1] / temperature  # (B, V)
        nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # (B, 1)
        out = torch.cat([out, nxt], dim=1)
        step_in = nxt
    model.train(was_training)
    return out
