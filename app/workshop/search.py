"""A small optuna hyper-parameter search: a few short training trials, best config saved."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from app.workshop.model import TrainConfig


def suggest(trial, base: TrainConfig) -> TrainConfig:
    """The search space: learning rate, depth, width, dropout and batch size."""
    width = trial.suggest_categorical("n_embd", [128, 192, 256])
    return replace(
        base,
        lr=trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        n_layer=trial.suggest_int("n_layer", 2, 6, step=2),
        n_embd=width,
        n_head=width // 64 if width >= 128 else 2,
        dropout=trial.suggest_categorical("dropout", [0.0, 0.1, 0.2]),
        batch_size=trial.suggest_categorical("batch_size", [8, 16]),
    )


def shared_tokenizer(base: TrainConfig, path: Path) -> Path:
    """Train the trials' tokenizer once instead of once per trial."""
    from app.workshop.data import load_corpus
    from app.workshop.tokenizer import save_tokenizer, train_tokenizer

    split = load_corpus(Path(base.corpus))
    save_tokenizer(train_tokenizer(split.train_texts, base.tokenizer_kind, base.vocab_size), path)
    return path


def run_search(base: TrainConfig, n_trials: int, seed: int = 0) -> dict:
    """Run `n_trials` short trials of `base` (its budget per trial); returns the best config."""
    import optuna

    from app.workshop.trainer import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scratch = Path(tempfile.mkdtemp(prefix="workshop-search-"))
    if not base.tokenizer and base.init == "scratch":
        base = replace(base, tokenizer=str(shared_tokenizer(base, scratch / "tokenizer")))

    def objective(trial) -> float:
        config = replace(suggest(trial, base), out=str(scratch / f"trial-{trial.number}"))
        try:
            _, _, state = fit(config)
        finally:
            shutil.rmtree(config.out, ignore_errors=True)
        return state.best_val

    try:
        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(objective, n_trials=n_trials)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = replace(suggest(study.best_trial, base), out="", tokenizer="")
    return {
        "best_val_loss": study.best_value,
        "best_params": study.best_params,
        "best_config": best.to_dict(),
        "trials": [
            {"number": t.number, "params": t.params, "val_loss": t.value} for t in study.trials
        ],
    }


def save_search(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
