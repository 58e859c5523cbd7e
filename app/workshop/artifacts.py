"""The finished model folder: weights, tokenizer, loss curve, metrics.json and MODEL_CARD.md.

Everything is written into a temporary folder beside OUT and swapped in with
renames at the end, so an interrupted save never leaves half a model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from app.workshop.model_card import card_text


def plot_losses(history: list[dict], path: Path, title: str) -> None:
    """Train and validation loss against step, as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["train_loss"] for h in history], label="train (EMA)")
    ax.plot(steps, [h["val_loss"] for h in history], label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def swap_into_place(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` with renames (the old folder, checkpoints included, goes)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_model_dir(out: Path, model, data, config, state, command: str = "") -> Path:
    """Save the trained model and its reports, then swap the folder into place."""
    import torch

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        model.to("cpu").save_pretrained(str(tmp))
        data.tokenizer.save_pretrained(str(tmp))
        plot_losses(state.history, tmp / "loss_curve.png", out.name)
        metrics = {
            "config": config.to_dict(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "device": str(next(model.parameters()).device),
            "threads": torch.get_num_threads(),
            "bf16": state.bf16,
            "steps": state.step,
            "tokens_seen": state.tokens,
            "train_minutes": round(state.elapsed / 60, 2),
            "best_val_loss": state.best_val,
            "corpus_fingerprint": data.split.fingerprint,
            "hygiene": data.split.hygiene.to_dict() if data.split.hygiene else None,
            "command": command,
            "history": state.history,
        }
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        card = card_text(out, config, data, state, metrics)
        (tmp / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        for path in tmp.iterdir():
            path.chmod(0o644)  # some writers create 0600 files; models are shared read-only
        swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
