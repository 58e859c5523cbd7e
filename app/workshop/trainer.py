"""The training loop: budgets, LR schedule, periodic validation and resumable checkpoints.

Checkpoints live in OUT/.checkpoints (tokenizer, last state, best weights) so
`--resume` after a kill continues at the last saved step with the same data
order and dropout stream. The finished model is assembled in a temporary
folder beside OUT and renamed into place, so OUT never holds half a model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from app.workshop import checkpoints as ckpt
from app.workshop.data import (
    CorpusSplit,
    check_big_enough,
    encode_texts,
    eval_windows,
    join_with_separator,
    load_corpus,
)
from app.workshop.model import TrainConfig, build_model, model_context, pick_device, use_bf16
from app.workshop.scoring import causal_lm_nll
from app.workshop.tokenizer import load_tokenizer, train_tokenizer

StepHook = Callable[[int], None]


@dataclass
class TrainState:
    """What a checkpoint restores: counters, history and the best validation loss so far."""

    step: int = 0
    elapsed: float = 0.0
    tokens: int = 0
    best_val: float = math.inf
    history: list[dict] = field(default_factory=list)
    bf16: bool = False  # trained under bf16 autocast (choose_bf16)


@dataclass
class PreparedData:
    """Token ids of the training split and the validation windows, with the tokenizer."""

    tokenizer: object
    split: CorpusSplit
    train_ids: object  # LongTensor (N,)
    val_windows: list
    context: int


def corpus_split(config: TrainConfig) -> CorpusSplit:
    """The run's corpus, cleaned (unless --no-clean) and split, with any pre-training text."""
    extra = [Path(p) for p in config.extra_corpus]
    split = load_corpus(Path(config.corpus), clean=config.clean, extra=extra)
    if split.hygiene is not None:
        for line in split.hygiene.lines():
            tqdm.write(line)
    return split


def prepare_tokenizer(config: TrainConfig, split: CorpusSplit, resume: bool):
    """The run's tokenizer: the checkpointed one on resume, the init model's, given, or trained."""
    saved = ckpt.tokenizer_dir(Path(config.out))
    if resume:
        return load_tokenizer(saved)
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    if config.init != "scratch":
        return load_tokenizer(config.init)
    return train_tokenizer(split.train_texts, config.tokenizer_kind, config.vocab_size)


def prepare_data(config: TrainConfig, tokenizer, split: CorpusSplit, context: int) -> PreparedData:
    """Encode both splits and check that the corpus holds at least one window."""
    import torch

    sep = tokenizer.eos_token_id
    train_stream = join_with_separator(encode_texts(tokenizer, split.train_texts), sep)
    val_stream = join_with_separator(encode_texts(tokenizer, split.val_texts), sep)
    check_big_enough(len(train_stream), len(val_stream), context)
    windows = eval_windows(val_stream, context, sep)
    return PreparedData(tokenizer, split, torch.tensor(train_stream), windows, context)


def periodic_windows(windows: list, count: int) -> list:
    """An evenly spread, fixed subset of validation windows for the periodic check."""
    if len(windows) <= count:
        return windows
    step = len(windows) / count
    return [windows[int(i * step)] for i in range(count)]


def lr_at(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr over the budget."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * cosine


def budget_progress(config: TrainConfig, state: TrainState) -> float:
    """Fraction of the budget used: the larger of the step and time fractions."""
    by_steps = state.step / config.max_steps if config.max_steps else 0.0
    by_time = state.elapsed / (config.minutes * 60) if config.minutes else 0.0
    return max(by_steps, by_time)


def sample_batch(data: PreparedData, batch_size: int, generator):
    """Random (B, T) input windows from the training stream and their next-token targets."""
    import torch

    T = data.context
    starts = torch.randint(0, len(data.train_ids) - T, (batch_size,), generator=generator)
    x = torch.stack([data.train_ids[s : s + T] for s in starts.tolist()])  # (B, T)
    y = torch.stack([data.train_ids[s + 1 : s + T + 1] for s in starts.tolist()])  # (B, T)
    return x, y


def train_step(model, optimizer, x, y, config: TrainConfig, lr: float, bf16: bool) -> float:
    """One optimiser step on one batch; returns the batch loss."""
    import torch
    import torch.nn.functional as F

    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=x).logits  # (B, T, V)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss.item()


def make_optimizer(model, config: TrainConfig):
    """AdamW with weight decay on matrices only (not biases, norms)."""
    import torch

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def choose_bf16(model, data: PreparedData, config: TrainConfig, device) -> bool:
    """bf16 autocast or fp32 for this run.

    `--bf16 auto` on a CPU with native bf16 times a forward and backward pass of one
    batch each way and takes the faster. Native bf16 alone does not decide it: on one
    AVX512-BF16 machine the English default trained 1.44x faster in bf16, on another
    (AVX512-BF16, no AMX) 1.34x faster in fp32 (docs/workshop.md)."""
    import torch

    device = torch.device(device)
    wanted = use_bf16(config, device.type)
    if config.bf16 != "auto" or not wanted:
        return wanted
    x, y = sample_batch(data, config.batch_size, torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):  # dropout here must not shift the run's RNG
        seconds = {bf16: _pass_seconds(model, x.to(device), y.to(device), bf16) for bf16 in (0, 1)}
    model.zero_grad(set_to_none=True)
    return seconds[1] < seconds[0]


def _pass_seconds(model, x, y, bf16: int, repeats: int = 2) -> float:
    """Best time of `repeats` forward+backward passes (after one warm-up)."""
    import torch
    import torch.nn.functional as F

    best = math.inf
    for i in range(repeats + 1):
        started = time.perf_counter()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bool(bf16)):
            logits = model(input_ids=x).logits  # (B, T, V)
        F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)).backward()
        if i:
            best = min(best, time.perf_counter() - started)
    return best


def validate(model, data: PreparedData, config: TrainConfig) -> float:
    """Mean validation loss (nats/token) on the fixed periodic subset."""
    subset = periodic_windows(data.val_windows, config.eval_windows)
    return causal_lm_nll(model, subset, pad_id=data.tokenizer.eos_token_id).loss


def run_loop(model, optimizer, data, config, state, generator, on_step=None) -> TrainState:
    """Train until the budget is spent, validating and checkpointing every eval_every steps."""
    device = next(model.parameters()).device
    model.train()
    if not (state.step and config.bf16 == "auto"):  # a resumed run keeps its first choice
        state.bf16 = choose_bf16(model, data, config, device)
    bf16 = state.bf16
    tqdm.write(f"bf16 autocast: {'on' if bf16 else 'off'} (--bf16 {config.bf16})")
    bar = tqdm(total=config.max_steps or None, initial=state.step, mininterval=5, unit="step")
    started, base_elapsed, running = time.time(), state.elapsed, None
    while budget_progress(config, state) < 1.0:
        x, y = sample_batch(data, config.batch_size, generator)
        lr = lr_at(config, state.step, budget_progress(config, state))
        loss = train_step(model, optimizer, x.to(device), y.to(device), config, lr, bf16)
        running = loss if running is None else 0.95 * running + 0.05 * loss
        state.step += 1
        state.tokens += x.numel()
        state.elapsed = base_elapsed + time.time() - started
        bar.update(1)
        rate = state.tokens / max(state.elapsed, 1e-9)
        bar.set_postfix(
            loss=f"{running:.3f}", tok_s=f"{rate:.0f}", eta=eta_text(config, state), refresh=False
        )
        finished = budget_progress(config, state) >= 1.0
        if state.step % config.eval_every == 0 or finished:
            val = validate(model, data, config)
            state.history.append(
                {
                    "step": state.step,
                    "train_loss": running,
                    "val_loss": val,
                    "tokens": state.tokens,
                    "minutes": state.elapsed / 60,
                    "lr": lr,
                }
            )
            bar.write(f"step {state.step}: train {running:.4f} val {val:.4f}")
            if val < state.best_val:
                state.best_val = val
                ckpt.save_best(Path(config.out), model)
            ckpt.save_state(Path(config.out), model, optimizer, state, generator, config, data)
        if on_step is not None:
            on_step(state.step)
    bar.close()
    return state


def eta_text(config: TrainConfig, state: TrainState) -> str:
    """Remaining time as m:ss from whichever budget binds."""
    done = budget_progress(config, state)
    if done <= 0:
        return "?"
    left = max(state.elapsed * (1 - done) / done, 0.0)
    return f"{int(left // 60)}:{int(left % 60):02d}"


def train(
    config: TrainConfig, resume: bool = False, on_step: StepHook | None = None, command: str = ""
) -> Path:
    """Run (or resume) a training run and write the finished model folder; returns its path."""
    from app.workshop.artifacts import write_model_dir

    model, data, state = fit(config, resume, on_step)
    return write_model_dir(Path(config.out), model, data, config, state, command)


def fit(config: TrainConfig, resume: bool = False, on_step: StepHook | None = None):
    """Train until the budget is spent; returns (best-validation model, data, state)."""
    import torch

    out = Path(config.out)
    ckpt.check_out_dir(out)
    if config.threads:
        torch.set_num_threads(config.threads)
    split = corpus_split(config)
    saved = ckpt.load_state(out, config, split.fingerprint) if resume else None
    tokenizer = prepare_tokenizer(config, split, resume)
    torch.manual_seed(config.seed)
    model = build_model(config, tokenizer)
    context = min(config.context, model_context(model, config.context))
    data = prepare_data(config, tokenizer, split, context)
    model.to(pick_device())
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    state = TrainState()
    if saved is None:
        ckpt.start_fresh(out, tokenizer)
    else:
        state = ckpt.restore(saved, model, optimizer, generator, TrainState)
    state = run_loop(model, optimizer, data, config, state, generator, on_step)
    ckpt.load_best(out, model)
    return model, data, state
