"""Training configuration and model construction (GPT-2 from scratch or a causal-LM checkpoint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from app.workshop.data import WorkshopError

# Fields that may differ between a run and its --resume (budgets and bookkeeping only).
RESUMABLE_CHANGES = {"minutes", "max_steps", "out", "threads", "card_notes"}


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in checkpoints and metrics.json."""

    corpus: str = ""
    extra_corpus: list[str] = field(default_factory=list)  # pre-training folders (train only)
    clean: bool = True  # corpus hygiene (app.workshop.hygiene) before the split
    out: str = ""
    init: str = "scratch"  # "scratch", a local checkpoint folder or a hub id
    tokenizer: str = ""  # a saved tokenizer folder; empty = train one on the training split
    tokenizer_kind: str = "bpe"
    vocab_size: int = 8192
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    context: int = 256
    dropout: float = 0.1
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    max_steps: int = 0  # 0 = no step limit (then --minutes must be set)
    minutes: float = 0.0  # 0 = no time limit
    eval_every: int = 100
    eval_windows: int = 32
    seed: int = 1337
    bf16: str = "auto"  # "auto" uses bf16 autocast only on CPUs with native bf16 support
    threads: int = 0  # 0 = torch default
    card_notes: str = ""  # a Markdown file whose text goes into MODEL_CARD.md (licence notes)

    def __post_init__(self) -> None:
        if self.max_steps <= 0 and self.minutes <= 0:
            raise WorkshopError("give a budget: --max-steps N and/or --minutes M")
        if self.n_embd % self.n_head:
            raise WorkshopError(f"--width {self.n_embd} is not divisible by --heads {self.n_head}")
        if self.context < 8:
            raise WorkshopError("--context must be at least 8 tokens")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def identity(self, corpus_fingerprint: str) -> str:
        """A hash of what must not change across --resume (arch, data, optimiser, seed)."""
        keep = {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_CHANGES}
        keep["corpus_fingerprint"] = corpus_fingerprint
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def config_differences(old: dict, new: dict) -> list[str]:
    """Human-readable list of fields that differ, for the --resume error message."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key in RESUMABLE_CHANGES:
            continue
        if old.get(key) != new.get(key):
            out.append(f"{key}: checkpoint has {old.get(key)!r}, this run has {new.get(key)!r}")
    return out


def pick_device() -> str:
    """cuda when present, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX512-BF16 or AMX (elsewhere bf16 autocast is far slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def use_bf16(config: TrainConfig, device: str) -> bool:
    """Whether to train under bf16 autocast.

    Measured on the project's 2-core AVX2 box: bf16 autocast was 20x slower than fp32
    (no AVX512-BF16/AMX), so "auto" turns it on only where the CPU has native bf16.
    """
    if config.bf16 == "on":
        return True
    if config.bf16 == "off":
        return False
    return device == "cpu" and cpu_has_native_bf16()


def build_model(config: TrainConfig, tokenizer):
    """A fresh GPT-2 sized by `config`, or the `init` checkpoint to fine-tune."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(config.seed)
    if config.init != "scratch":
        try:
            model = AutoModelForCausalLM.from_pretrained(config.init, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise WorkshopError(f"cannot load --init {config.init}: {exc}") from exc
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        set_dropout(model, config.dropout)
        return model
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.context,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(gpt_config)


def set_dropout(model, p: float) -> None:
    """Every dropout layer of a loaded checkpoint at rate `p` (--dropout applies to fine-tuning)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        if hasattr(model.config, name):
            setattr(model.config, name, p)


def model_context(model, fallback: int) -> int:
    """The longest sequence a causal LM accepts (n_positions / max_position_embeddings)."""
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return fallback
