"""`model eval` end to end: score the model and the baselines, print the table, update the card."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from app.generation.sampling import SamplingParams
from app.workshop import baselines
from app.workshop.evaluate import (
    HeldOut,
    evaluate_model,
    held_out,
    load_model,
    score_row,
    write_report,
)
from app.workshop.model import model_context
from app.workshop.sampling import EVAL_NEW_TOKENS


def baseline_rows(
    data: HeldOut, settings: SamplingParams, lstm_minutes: float, seed: int = 0
) -> list[dict]:
    """Character bigram, token bigram and LSTM rows, scored and sampled like the model."""
    import torch
    from transformers import GenerationConfig

    chars = sum(len(t) for t in data.val_texts)
    vocab = len(data.tokenizer)
    started = time.time()
    char_score, char_k = baselines.char_bigram_score(data.train_texts, data.val_texts)
    rows = [
        score_row(
            "bigram (char)",
            char_score,
            chars,
            None,
            k=char_k,
            seconds=round(time.time() - started, 1),
        )
    ]
    started = time.time()
    bigram = baselines.fit_bigram(data.train_stream, vocab)
    token_score = bigram.score_windows(data.windows)
    processors = _processors(settings, GenerationConfig)
    samples = _baseline_samples(
        lambda p, s: baselines.sample_bigram(bigram, p, settings.max_new_tokens, processors, s),
        data,
        settings,
        seed,
        torch,
    )
    rows.append(
        score_row(
            "bigram (token)",
            token_score,
            chars,
            samples,
            k=bigram.k,
            seconds=round(time.time() - started, 1),
        )
    )
    if lstm_minutes > 0:
        started = time.time()
        lstm, steps = baselines.train_lstm(data.train_stream, vocab, lstm_minutes, data.context)
        samples = _baseline_samples(
            lambda p, s: baselines.sample_lstm(lstm, p, settings.max_new_tokens, processors, s),
            data,
            settings,
            seed,
            torch,
        )
        rows.append(
            score_row(
                "LSTM (token)",
                baselines.lstm_score(lstm, data.windows),
                chars,
                samples,
                train_minutes=lstm_minutes,
                steps=steps,
                seconds=round(time.time() - started, 1),
            )
        )
    return rows


def _processors(settings: SamplingParams, generation_config_cls):
    """The same logits processors `generate` builds for these settings."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.no_repeat_ngram_size > 0:
        procs.append(NoRepeatNGramLogitsProcessor(settings.no_repeat_ngram_size))
    if settings.temperature > 0:
        procs.append(TemperatureLogitsWarper(settings.temperature))
        procs.append(TopKLogitsWarper(settings.top_k))
        procs.append(TopPLogitsWarper(settings.top_p))
    return procs


def _baseline_samples(sample_fn, data: HeldOut, settings: SamplingParams, seed: int, torch):
    texts = []
    for i, (prompt, _) in enumerate(data.prompts):
        torch.manual_seed(seed + i)
        ids = sample_fn(list(prompt), settings.temperature <= 0)
        texts.append(data.tokenizer.decode(ids, skip_special_tokens=True))
    return texts


def format_table(results: dict) -> str:
    """The results as a fixed-width text table."""
    lines = [f"{'':28} {'bits/char':>9} {'tok ppl':>9} {'distinct-2':>10} {'rep-4gram':>9}"]
    for row in [*results["rows"], results["corpus"]]:
        bpc = f"{row['bits_per_char']:.4f}" if "bits_per_char" in row else "-"
        ppl = f"{row['token_perplexity']:.2f}" if "token_perplexity" in row else "-"
        d2 = f"{row['distinct_2']:.4f}" if "distinct_2" in row else "-"
        r4 = f"{row['repeated_4gram']:.4f}" if "repeated_4gram" in row else "-"
        lines.append(f"{row['name']:28} {bpc:>9} {ppl:>9} {d2:>10} {r4:>9}")
    return "\n".join(lines)


def targets(results: dict) -> dict:
    """How the model does against the issue's targets (ratios; < 1 is better than baseline)."""
    by_name = {r["name"]: r for r in results["rows"]}
    model = by_name["model"]["bits_per_char"]
    out = {}
    bigrams = {n: r["bits_per_char"] for n, r in by_name.items() if n.startswith("bigram")}
    for name, bpc in bigrams.items():
        out[f"vs_{name.replace(' ', '_').strip('()').replace('(', '')}"] = {
            "reduction": 1 - model / bpc,
            "target": 0.35,
        }
    if bigrams:
        out["vs_best_bigram"] = {"reduction": 1 - model / min(bigrams.values()), "target": 0.35}
    if "LSTM (token)" in by_name:
        out["vs_lstm"] = {
            "reduction": 1 - model / by_name["LSTM (token)"]["bits_per_char"],
            "target": 0.15,
        }
    corpus_rate = results["corpus"]["repeated_4gram"]
    model_rate = by_name["model"].get("repeated_4gram", 0.0)
    out["repeat_ratio"] = {
        "ratio": model_rate / corpus_rate if corpus_rate else None,
        "target": 2.0,
    }
    return out


def run_eval(
    model_dir: str,
    corpus: Path,
    with_baselines: bool,
    lstm_minutes: float,
    n_samples: int,
    report_dir: Path | None,
    seed: int = 0,
    clean: bool = True,
) -> dict:
    """Evaluate a saved model (and baselines) on the corpus's (cleaned) validation split."""
    model, tokenizer = load_model(model_dir)
    context = model_context(model, 256)
    # Prompt + sample must fit the model's window (256 for the shipped defaults: 56 + 200).
    new_tokens = min(EVAL_NEW_TOKENS, context - 16)
    settings = replace(SamplingParams(), max_new_tokens=new_tokens)
    data = held_out(tokenizer, corpus, context, n_samples, settings.max_new_tokens, clean)
    evaluated = evaluate_model(model, data, settings, seed)
    rows = [evaluated["model"]]
    if with_baselines:
        rows += baseline_rows(data, settings, lstm_minutes, seed)
    results = {
        "title": f"{Path(model_dir).name} on {Path(corpus).name}/ (validation)",
        "model_dir": str(model_dir),
        "corpus_dir": str(corpus),
        "rows": rows,
        "corpus": evaluated["corpus"],
        "samples": evaluated["samples"],
        "settings": asdict(settings),
        "n_samples": len(data.prompts),
        "context": context,
        "lstm_minutes": lstm_minutes if with_baselines else None,
    }
    results["targets"] = targets(results)
    if report_dir is not None:
        write_report(results, Path(report_dir))
    return results
