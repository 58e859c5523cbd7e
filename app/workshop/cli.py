"""`flask model ...`: the thin command-line edge of the model workshop.

Commands parse options, call the workshop's plain functions and turn a
WorkshopError into a clear message with exit status 1. They need no app
context, so `python -m app.workshop ...` runs the same group without Flask's app.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click
from flask.cli import AppGroup

from app.workshop.data import WorkshopError

model_cli = AppGroup("model", help="Train, evaluate, search and sample the workshop's models.")


def friendly_errors(func):
    """Report WorkshopError (bad input) as a ClickException instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except WorkshopError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


CORPUS = click.option(
    "--corpus", required=True, type=click.Path(path_type=Path), help="Folder of UTF-8 .txt files."
)

CLEAN = click.option(
    "--clean/--no-clean",
    default=True,
    show_default=True,
    help="Corpus hygiene (app/workshop/hygiene.py) before the split; --no-clean keeps raw text.",
)


@model_cli.command("tokenizer", with_appcontext=False)
@CORPUS
@CLEAN
@click.option("--vocab-size", default=8192, show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(["bpe", "char"]), default="bpe", show_default=True)
@friendly_errors
def tokenizer_command(corpus: Path, clean: bool, vocab_size: int, out: Path, kind: str) -> None:
    """Train a byte-level BPE (or character) tokenizer on the corpus's training split."""
    from app.workshop.data import load_corpus
    from app.workshop.tokenizer import save_tokenizer, train_tokenizer

    split = load_corpus(corpus, clean=clean)
    tok = train_tokenizer(split.train_texts, kind, vocab_size)
    save_tokenizer(tok, out)
    click.echo(f"{kind} tokenizer with {len(tok)} tokens saved to {out}")


@model_cli.command("train", with_appcontext=False)
@CORPUS
@click.option(
    "--extra-corpus",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Pre-training folder (repeatable): its files join the training split whole.",
)
@CLEAN
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--init", default="scratch", show_default=True, help="scratch, a folder or hub id.")
@click.option("--tokenizer", "tokenizer_path", default="", help="Saved tokenizer folder.")
@click.option("--tokenizer-kind", type=click.Choice(["bpe", "char"]), default="bpe")
@click.option("--vocab-size", default=8192, show_default=True)
@click.option("--layers", default=4, show_default=True)
@click.option("--width", default=256, show_default=True)
@click.option("--heads", default=4, show_default=True)
@click.option("--context", default=256, show_default=True)
@click.option("--dropout", default=0.1, show_default=True)
@click.option("--batch", default=8, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--warmup", default=100, show_default=True)
@click.option("--weight-decay", default=0.1, show_default=True)
@click.option("--max-steps", default=0, show_default=True, help="0 = no step limit.")
@click.option("--minutes", default=0.0, show_default=True, help="Wall-time budget; 0 = none.")
@click.option("--eval-every", default=100, show_default=True)
@click.option("--seed", default=1337, show_default=True)
@click.option("--bf16", type=click.Choice(["auto", "on", "off"]), default="auto")
@click.option("--threads", default=0, help="torch threads (0 = torch default).")
@click.option("--card-notes", default="", help="Markdown file to include in MODEL_CARD.md.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@friendly_errors
def train_command(resume: bool, **options) -> None:
    """Train a GPT-2 from scratch or fine-tune a causal-LM checkpoint on a corpus folder."""
    from app.workshop.model import TrainConfig
    from app.workshop.trainer import train

    names = {
        "tokenizer_path": "tokenizer",
        "layers": "n_layer",
        "width": "n_embd",
        "heads": "n_head",
        "batch": "batch_size",
        "warmup": "warmup_steps",
    }
    values = {names.get(k, k): v for k, v in options.items()}
    values["corpus"], values["out"] = str(values["corpus"]), str(values["out"])
    values["extra_corpus"] = [str(p) for p in values["extra_corpus"]]
    config = TrainConfig(**values)
    out = train(config, resume=resume, command=command_line(click.get_current_context()))
    click.echo(f"model saved to {out}")


@model_cli.command("sample", with_appcontext=False)
@click.option("--model", "model_dir", required=True)
@click.option("--prompt", required=True)
@click.option("--max-new-tokens", default=200, show_default=True)
@click.option("--temperature", default=None, type=float)
@click.option("--top-p", default=None, type=float)
@click.option("--top-k", default=None, type=int)
@click.option("--repetition-penalty", default=None, type=float)
@click.option("--no-repeat-ngram-size", default=None, type=int)
@click.option("--seed", default=0, show_default=True)
@friendly_errors
def sample_command(model_dir: str, prompt: str, seed: int, **overrides) -> None:
    """Continue a prompt with the app's sampling options (defaults: the balanced preset)."""
    from dataclasses import replace

    from app.workshop.evaluate import load_model
    from app.workshop.sampling import eval_settings, generate_text

    model, tokenizer = load_model(model_dir)
    settings = replace(eval_settings(), **{k: v for k, v in overrides.items() if v is not None})
    click.echo(prompt + generate_text(model, tokenizer, prompt, settings, seed=seed))


@model_cli.command("fit-cache", with_appcontext=False)
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path))
@CORPUS
@CLEAN
@click.option("--windows", default=80, show_default=True, help="Windows per half, at most.")
@friendly_errors
def fit_cache_command(model_dir: Path, corpus: Path, clean: bool, windows: int) -> None:
    """Fit the story cache's theta and lambda on the corpus's tuning split and switch it on in
    the model folder's generation_config.json where it helps held-out bits/char."""
    from app.workshop.data import load_corpus
    from app.workshop.evaluate import load_model
    from app.workshop.model import model_context
    from app.workshop.story_cache_fit import fit, write_switch

    model, tokenizer = load_model(model_dir)
    split = load_corpus(corpus, clean=clean)
    result = fit(model, tokenizer, split.val_texts, model_context(model, 256), windows)
    echo_json(write_switch(model_dir, result, corpus.name))


def command_line(ctx: click.Context) -> str:
    """The command as typed (options given on the command line only), for model cards."""
    import shlex

    from click.core import ParameterSource

    parts = ["flask", "model", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        typed = ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE
        if not isinstance(param, click.Option) or value is None or not typed:
            continue
        if param.is_flag:
            parts.append(param.opts[-1] if value else (param.secondary_opts or [""])[0])
        else:
            parts += [param.opts[-1], str(value)]
    return shlex.join(parts)


def echo_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@model_cli.command("eval", with_appcontext=False)
@click.option("--model", "model_dir", required=True, help="A saved model folder.")
@CORPUS
@click.option("--baselines", is_flag=True, help="Also train and score a bigram and an LSTM.")
@click.option("--lstm-minutes", default=10.0, show_default=True, help="LSTM training budget.")
@click.option("--samples", "n_samples", default=8, show_default=True)
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where eval.json/eval.png go (default: the model folder, unless --no-update-card).",
)
@click.option(
    "--update-card/--no-update-card",
    default=True,
    show_default=True,
    help="--no-update-card leaves the model folder untouched (no card, eval.json or eval.png).",
)
@click.option("--threads", default=0, help="torch threads (0 = torch default).")
@click.option("--seed", default=0, show_default=True)
@CLEAN
@friendly_errors
def eval_command(
    model_dir: str,
    corpus: Path,
    clean: bool,
    baselines: bool,
    lstm_minutes: float,
    n_samples: int,
    report_dir: Path | None,
    update_card: bool,
    threads: int,
    seed: int,
) -> None:
    """Bits/char, perplexity and sample repetition on the validation split (and baselines)."""
    import torch

    from app.workshop.eval_report import format_table, run_eval
    from app.workshop.evaluate import write_report
    from app.workshop.model_card import measured_section

    if threads:
        torch.set_num_threads(threads)
    local = Path(model_dir).is_dir()
    if report_dir is None and local and update_card:
        report_dir = Path(model_dir)
    results = run_eval(model_dir, corpus, baselines, lstm_minutes, n_samples, None, seed, clean)
    results["command"] = command_line(click.get_current_context())
    click.echo(format_table(results))
    echo_json(results["targets"])
    if report_dir is not None:
        write_report(results, report_dir)
    if report_dir is not None and update_card and local:
        measured_section(Path(model_dir), results)


@model_cli.command("search", with_appcontext=False)
@CORPUS
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSON report.")
@click.option("--trials", default=6, show_default=True)
@click.option("--max-steps", default=150, show_default=True, help="Steps per trial.")
@click.option("--minutes", default=0.0, show_default=True, help="Wall-time cap per trial.")
@click.option("--context", default=128, show_default=True)
@click.option("--vocab-size", default=4096, show_default=True)
@click.option("--tokenizer-kind", type=click.Choice(["bpe", "char"]), default="bpe")
@click.option("--threads", default=0)
@click.option("--seed", default=0, show_default=True)
@friendly_errors
def search_command(
    corpus: Path,
    out: Path,
    trials: int,
    max_steps: int,
    minutes: float,
    context: int,
    vocab_size: int,
    tokenizer_kind: str,
    threads: int,
    seed: int,
) -> None:
    """Small optuna search over lr, depth, width, dropout and batch; saves the best config."""
    from app.workshop.model import TrainConfig
    from app.workshop.search import run_search, save_search

    base = TrainConfig(
        corpus=str(corpus),
        context=context,
        vocab_size=vocab_size,
        tokenizer_kind=tokenizer_kind,
        max_steps=max_steps,
        minutes=minutes,
        eval_every=max(max_steps // 3, 1),
        warmup_steps=max(max_steps // 10, 1),
        threads=threads,
        seed=seed,
    )
    result = run_search(base, trials, seed)
    save_search(result, out)
    click.echo(f"best validation loss {result['best_val_loss']:.4f} with {result['best_params']}")
    click.echo(f"report saved to {out}")
