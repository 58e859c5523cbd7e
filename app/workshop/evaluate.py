"""Held-out evaluation: bits/char, perplexity and sample repetition, next to the baselines.

Bits per character is the total negative log-likelihood of the validation
text divided by its number of characters and ln 2, so models with different
tokenizers (and the character bigram) compare directly. Samples continue
held-out prompts with the default `SamplingParams`; their distinct-2 and
repeated-4-gram rates (over whitespace-separated words) sit next to the same
figures for the true continuations of those prompts.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.generation.sampling import SamplingParams
from app.workshop.data import (
    WorkshopError,
    encode_texts,
    eval_windows,
    join_with_separator,
    load_corpus,
)
from app.workshop.scoring import Score, causal_lm_nll

PROMPT_TOKENS = 64


def load_model(model_dir: str | Path):
    """A saved causal LM and its tokenizer, on the best device, ready to generate."""
    from transformers import AutoModelForCausalLM

    from app.workshop.model import pick_device
    from app.workshop.tokenizer import load_tokenizer

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise WorkshopError(f"no model at {model_dir} (config.json missing)")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise WorkshopError(f"cannot load the model in {model_dir}: {exc}") from exc
    model.to(pick_device()).eval()
    return model, load_tokenizer(path)


def word_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = text.split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(text: str, n: int = 2) -> float:
    """Unique n-grams / n-grams (1.0 = no repetition)."""
    grams = word_ngrams(text, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def repeated_ngram_rate(text: str, n: int = 4) -> float:
    """Share of n-grams that already occurred earlier in the same text (0.0 = none)."""
    grams = word_ngrams(text, n)
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams) if grams else 0.0


def text_stats(texts: list[str]) -> dict[str, float]:
    """Mean distinct-2 and repeated-4-gram rate over texts."""
    return {
        "distinct_2": sum(distinct_n(t) for t in texts) / max(len(texts), 1),
        "repeated_4gram": sum(repeated_ngram_rate(t) for t in texts) / max(len(texts), 1),
    }


@dataclass
class HeldOut:
    """Validation data in one tokenizer's ids: windows, per-file streams and prompts."""

    tokenizer: object
    val_texts: list[str]
    train_texts: list[str]
    context: int
    windows: list = field(default_factory=list)
    train_stream: list = field(default_factory=list)
    prompts: list = field(default_factory=list)  # (prompt ids, true continuation ids)


def held_out(
    tokenizer, corpus: Path, context: int, n_samples: int, length: int, clean: bool = True
) -> HeldOut:
    """Split the (cleaned) corpus, encode it and pick `n_samples` prompts over the val files."""
    split = load_corpus(corpus, clean=clean)
    sep = tokenizer.eos_token_id
    val_ids = encode_texts(tokenizer, split.val_texts)
    data = HeldOut(tokenizer, split.val_texts, split.train_texts, context)
    data.windows = eval_windows(join_with_separator(val_ids, sep), context, sep)
    data.train_stream = join_with_separator(encode_texts(tokenizer, split.train_texts), sep)
    prompt_len = min(PROMPT_TOKENS, context - length)
    span = prompt_len + length
    usable = [ids for ids in val_ids if len(ids) >= span]
    for i in range(n_samples if usable else 0):
        ids = usable[i % len(usable)]
        rounds = math.ceil(n_samples / len(usable))
        start = (len(ids) - span) * (i // len(usable)) // max(rounds, 1)
        cut = start + prompt_len
        data.prompts.append((ids[start:cut], ids[cut : cut + length]))
    return data


def sample_model(model, data: HeldOut, settings: SamplingParams, seed: int) -> list[str]:
    """Continue every held-out prompt with the model; returns the decoded continuations."""
    import torch

    texts = []
    for i, (prompt, _) in enumerate(data.prompts):
        torch.manual_seed(seed + i)
        inputs = torch.tensor([prompt], device=model.device)
        out = model.generate(
            inputs,
            attention_mask=torch.ones_like(inputs),
            pad_token_id=data.tokenizer.eos_token_id,
            min_new_tokens=settings.max_new_tokens,
            **settings.generate_kwargs(),
        )
        texts.append(data.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True))
    return texts


def reference_texts(data: HeldOut) -> list[str]:
    """The true continuations of the prompts (the corpus's own repetition level)."""
    return [data.tokenizer.decode(cont) for _, cont in data.prompts]


def score_row(name: str, score: Score, chars: int, samples: list[str] | None, **extra) -> dict:
    """One line of the results table."""
    score.chars = chars
    row = {
        "name": name,
        "bits_per_char": score.bits_per_char,
        "token_perplexity": score.perplexity,
        "tokens": score.tokens,
        **extra,
    }
    if samples is not None:
        row |= text_stats(samples)
    return row


def evaluate_model(model, data: HeldOut, settings: SamplingParams, seed: int = 0) -> dict:
    """The model's bits/char, perplexity and sample statistics, with the corpus reference."""
    started = time.time()
    score = causal_lm_nll(model, data.windows, pad_id=data.tokenizer.eos_token_id)
    samples = sample_model(model, data, settings, seed)
    chars = sum(len(t) for t in data.val_texts)
    row = score_row("model", score, chars, samples, seconds=round(time.time() - started, 1))
    corpus = {"name": "corpus (true continuations)", **text_stats(reference_texts(data))}
    return {"model": row, "corpus": corpus, "samples": samples[:3]}


def write_report(results: dict, report_dir: Path) -> None:
    """eval.json and eval.png (bits/char of the model and each baseline) into `report_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "eval.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.bar([r["name"] for r in rows], [r["bits_per_char"] for r in rows], color="#4a7")
    ax.set_ylabel("validation bits / char")
    ax.set_title(results.get("title", "held-out evaluation"))
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    fig.savefig(report_dir / "eval.png")
    plt.close(fig)
