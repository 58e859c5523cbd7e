"""Resumable training checkpoints in OUT/.checkpoints (written atomically, checked on resume)."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import asdict
from pathlib import Path

from app.workshop.data import WorkshopError
from app.workshop.model import TrainConfig, config_differences

CHECKPOINT_DIR = ".checkpoints"
STATE_FILE = "state.pt"
BEST_FILE = "best.pt"


def checkpoint_dir(out: Path) -> Path:
    return Path(out) / CHECKPOINT_DIR


def tokenizer_dir(out: Path) -> Path:
    return checkpoint_dir(out) / "tokenizer"


def check_out_dir(out: Path) -> None:
    """Refuse to replace a folder that is neither empty, a model, nor one of our runs."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WorkshopError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names and not names & {"config.json", CHECKPOINT_DIR}:
            raise WorkshopError(
                f"--out {out} is a non-empty folder that holds no model; refusing to replace it"
            )


def start_fresh(out: Path, tokenizer) -> None:
    """Drop checkpoints of an earlier run and keep this run's tokenizer for --resume."""
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    tokenizer.save_pretrained(str(tokenizer_dir(out)))


def _atomic_save(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_state(out: Path, model, optimizer, state, generator, config: TrainConfig, data) -> None:
    """Everything needed to continue exactly where this step left off."""
    import torch

    _atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": asdict(state),
            "torch_rng": torch.get_rng_state(),
            "batch_rng": generator.get_state(),
            "config": config.to_dict(),
            "identity": config.identity(data.split.fingerprint),
        },
        checkpoint_dir(out) / STATE_FILE,
    )


def save_best(out: Path, model) -> None:
    _atomic_save(model.state_dict(), checkpoint_dir(out) / BEST_FILE)


def load_best(out: Path, model) -> None:
    """Put the best-validation weights back into `model` (no-op when none were saved)."""
    import torch

    path = checkpoint_dir(out) / BEST_FILE
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _read(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError) as exc:
        raise WorkshopError(f"checkpoint {path} is corrupt or unreadable: {exc}") from exc


def load_state(out: Path, config: TrainConfig, fingerprint: str) -> dict:
    """The last checkpoint of the run in `out`, checked against this run's config and corpus."""
    path = checkpoint_dir(out) / STATE_FILE
    if not path.exists():
        raise WorkshopError(f"nothing to resume: no checkpoint at {path}")
    saved = _read(path)
    if not isinstance(saved, dict) or "identity" not in saved:
        raise WorkshopError(f"checkpoint {path} is corrupt (missing fields)")
    if saved["identity"] != config.identity(fingerprint):
        diffs = config_differences(saved["config"], config.to_dict())
        detail = "; ".join(diffs) or "the corpus changed"
        raise WorkshopError(f"--resume with a different config than the checkpoint: {detail}")
    if not tokenizer_dir(out).is_dir():
        raise WorkshopError(f"checkpoint tokenizer missing in {tokenizer_dir(out)}")
    return saved


def restore(saved: dict, model, optimizer, generator, state_cls):
    """Load weights, optimiser and RNG streams from a checkpoint; returns the TrainState."""
    import torch

    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise WorkshopError(f"checkpoint does not fit this model: {exc}") from exc
    torch.set_rng_state(saved["torch_rng"])
    generator.set_state(saved["batch_rng"])
    return state_cls(**saved["state"])


def remove(out: Path) -> None:
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
