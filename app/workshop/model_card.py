"""MODEL_CARD.md: written at the end of training, its measured-figures section by `model eval`."""

from __future__ import annotations

from pathlib import Path

EVAL_START = "<!-- measured:start -->"
EVAL_END = "<!-- measured:end -->"


def source_rows(corpus_dir: Path, files: list[Path]) -> list[str]:
    """The SOURCES.md table rows (with header) that describe the corpus files, if any."""
    for candidate in (corpus_dir / "SOURCES.md", corpus_dir.parent / "SOURCES.md"):
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8").splitlines()
            break
    else:
        return []
    wanted = {f"`{corpus_dir.name}/{f.name}`" for f in files}
    rows = [ln for ln in lines if ln.startswith("|") and any(w in ln for w in wanted)]
    header = next((i for i, ln in enumerate(lines) if ln.startswith("| file")), None)
    if header is None or not rows:
        return rows
    return lines[header : header + 2] + rows


def lineage_lines(config) -> list[str]:
    """A "Pre-training" section for a model fine-tuned from a workshop model folder: the
    init model's corpus, pre-training folders (with their SOURCES.md rows) and budget."""
    init = Path(config.init)
    metrics_file = init / "metrics.json"
    if config.init == "scratch" or not metrics_file.is_file():
        return []
    import json

    parent = json.loads(metrics_file.read_text(encoding="utf-8"))
    pc = parent.get("config", {})
    lines = [
        "## Pre-training",
        "",
        f"Fine-tuned from a workshop model: GPT-2, {pc.get('n_layer')} layers, width "
        f"{pc.get('n_embd')}, {pc.get('n_head')} heads, context {pc.get('context')}, "
        f"{parent.get('parameters', 0) / 1e6:.2f}M parameters, trained for "
        f"{parent.get('train_minutes')} min ({parent.get('steps')} steps, "
        f"{parent.get('tokens_seen', 0):,} tokens) on the training split of "
        f"`{Path(pc.get('corpus', '')).name}/` plus every file of "
        + ", ".join(f"`{Path(p).name}/`" for p in pc.get("extra_corpus", []))
        + " (validation: the same held-out tail as below).",
    ]
    if parent.get("command"):
        lines += ["", "```", parent["command"], "```"]
    for folder in pc.get("extra_corpus", []):
        folder = Path(folder)
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        rows = source_rows(folder, files)
        if rows:
            lines += ["", f"Pre-training folder `{folder.name}/`:", "", *rows]
    return [*lines, ""]


def hygiene_lines(data) -> list[str]:
    """What corpus hygiene removed (app/workshop/hygiene.py), as a table."""
    report = data.split.hygiene
    if report is None:
        return ["Corpus hygiene: off (`--no-clean`): the text was trained on as it is.", ""]
    rows = [
        f"| {rule} | {report.matches[rule]:,} | {report.removed[rule]:,} |"
        for rule in report.matches
    ]
    return [
        "Corpus hygiene (`app/workshop/hygiene.py`) ran before the split: "
        f"{report.chars_in:,} characters in, {report.chars_out:,} out.",
        "",
        "| rule | changes | characters removed |",
        "|---|---:|---:|",
        *rows,
        "",
    ]


def card_text(out: Path, config, data, state, metrics: dict) -> str:
    """MODEL_CARD.md: data and credits, config, training time, figures measured so far."""
    corpus = Path(config.corpus)
    rows = source_rows(corpus, data.split.files) or [f"- `{f.name}`" for f in data.split.files]
    notes = Path(config.card_notes).read_text(encoding="utf-8") if config.card_notes else ""
    arch = (
        f"GPT-2, {config.n_layer} layers, width {config.n_embd}, {config.n_head} heads, "
        f"context {data.context}, vocab {len(data.tokenizer)}"
        if config.init == "scratch"
        else f"fine-tuned from `{config.init}` (context {data.context}, "
        f"vocab {len(data.tokenizer)})"
    )
    return "\n".join(
        [
            f"# {out.name}",
            "",
            f"A small causal language model trained by the Relay Novel model workshop: {arch}, "
            f"{metrics['parameters'] / 1e6:.2f}M parameters.",
            "",
            notes.strip(),
            "",
            "## Training data",
            "",
            f"Corpus folder `{corpus.name}/`: {len(data.split.files)} files, "
            f"{data.split.train_chars:,} training and {data.split.val_chars:,} validation "
            "characters. The last 10% of every file is validation and was never trained on.",
            "",
            *rows,
            "",
            *hygiene_lines(data),
            *lineage_lines(config),
            "## Training",
            "",
            f"- steps: {state.step}, tokens seen: {state.tokens:,}, "
            f"wall time: {state.elapsed / 60:.1f} min on `{metrics['device']}` "
            f"({metrics['threads']} torch threads), bf16 autocast: {metrics['bf16']}",
            f"- best validation loss: {state.best_val:.4f} nats/token (periodic subset; the "
            "saved weights are the best-validation checkpoint)",
            "- config: see `metrics.json` (`config`); loss curve: `loss_curve.png`",
            *(
                ["", "Trained with:", "", "```", metrics["command"], "```"]
                if metrics.get("command")
                else []
            ),
            "",
            "## Measured figures",
            "",
            EVAL_START,
            "Not evaluated yet: run `flask model eval --model DIR --corpus DIR --baselines`.",
            EVAL_END,
            "",
        ]
    )


def update_card_section(card: Path, body: str) -> None:
    """Replace the measured-figures section of a card (append one if it has none)."""
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    block = f"{EVAL_START}\n{body.strip()}\n{EVAL_END}"
    if EVAL_START in text and EVAL_END in text:
        head, rest = text.split(EVAL_START, 1)
        text = head + block + rest.split(EVAL_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Measured figures\n\n" + block + "\n"
    card.write_text(text, encoding="utf-8")


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def measured_markdown(results: dict) -> str:
    """The eval results as a Markdown table, the targets and the command that produced them."""
    lines = [
        "| | bits/char | token ppl | distinct-2 | rep-4gram | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in [*results["rows"], results["corpus"]]:
        cells = [
            f"{row[k]:.4f}" if k in row else "-"
            for k in ("bits_per_char", "token_perplexity", "distinct_2", "repeated_4gram")
        ]
        note = ", ".join(f"{k}={row[k]}" for k in ("k", "train_minutes", "steps") if k in row)
        lines.append(f"| {row['name']} | " + " | ".join(cells) + f" | {note} |")
    t = results["targets"]
    checks = []
    bigram_labels = {
        "vs_bigram_char": "the character bigram",
        "vs_bigram_token": "the token bigram",
        "vs_best_bigram": "the better of the two bigrams",
    }
    for key, label in bigram_labels.items():
        if key in t:
            got = t[key]["reduction"]
            checks.append(
                f"- bits/char vs {label}: {_pct(got)} lower (target >= 35%: "
                f"{'met' if got >= 0.35 else 'MISSED'})"
            )
    if "vs_lstm" in t:
        got = t["vs_lstm"]["reduction"]
        checks.append(
            f"- bits/char vs the LSTM ({results.get('lstm_minutes')} min budget): "
            f"{_pct(got)} lower (target >= 15%: {'met' if got >= 0.15 else 'MISSED'})"
        )
    lstm = next((r for r in results["rows"] if r["name"].startswith("LSTM")), None)
    if lstm is not None:
        checks.append(
            f"- the LSTM baseline trained for {lstm['train_minutes']} min of wall time "
            f"({lstm['steps']} steps of 16 x {results.get('context', 256)} tokens); the "
            "model's own budget is under Training above (a shorter LSTM budget would "
            "favour the model)."
        )
    ratio = t["repeat_ratio"]["ratio"]
    if ratio is None:
        model_rate = results["rows"][0].get("repeated_4gram", 0.0)
        checks.append(
            f"- repeated-4-gram rate of samples: {model_rate:.4f}, corpus's own: 0 "
            f"(target <= 2x: {'met' if model_rate == 0 else 'MISSED'})"
        )
    else:
        checks.append(
            f"- repeated-4-gram rate of samples / corpus's own: {ratio:.2f}x "
            f"(target <= 2x: {'met' if ratio <= 2 else 'MISSED'})"
        )
    return "\n".join(
        [
            f"Validation split of `{Path(results['corpus_dir']).name}/` (last 10% of every file); "
            f"{results['n_samples']} samples of {results['settings']['max_new_tokens']} tokens "
            "with the default `SamplingParams` from held-out prompts (the model's window "
            "minus the sample length, at most 64 tokens). "
            "Repetition figures count whitespace-separated words.",
            "",
            *lines,
            "",
            *checks,
            "",
            "Produced by:",
            "",
            "```",
            results.get("command", ""),
            "```",
        ]
    )


def measured_section(model_dir: Path, results: dict) -> None:
    """Write the eval results into the model's card."""
    update_card_section(Path(model_dir) / "MODEL_CARD.md", measured_markdown(results))
