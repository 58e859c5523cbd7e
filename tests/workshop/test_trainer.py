"""Training: loss falls, kill-and-resume, the saved folder loads and generates."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.workshop.checkpoints import checkpoint_dir
from app.workshop.trainer import train


class Killed(Exception):
    """Stands in for a kill -9 in the middle of training."""


def kill_at(step: int):
    def hook(current: int) -> None:
        if current == step:
            raise Killed

    return hook


def test_validation_loss_falls(tiny_config):
    """Does a tiny run end with a lower validation loss than its first check?"""
    out = train(tiny_config)
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["step"] == tiny_config.max_steps


def test_saved_model_loads_and_generates(tiny_config):
    """Does the output folder load with from_pretrained and generate, with its card and plot?"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = train(tiny_config)
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([tok.encode("the keeper")])
    generated = model.generate(
        ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.eos_token_id
    )
    assert generated.shape[1] == ids.shape[1] + 5
    for name in ("MODEL_CARD.md", "loss_curve.png", "metrics.json", "model.safetensors"):
        assert (out / name).is_file()
    assert not checkpoint_dir(out).exists()


def test_kill_and_resume_reaches_same_step(tiny_config, tmp_path):
    """Does --resume after a kill finish at the same step, with the same weights as a clean run?"""
    clean = train(replace(tiny_config, out=str(tmp_path / "clean")))
    with pytest.raises(Killed):
        train(tiny_config, on_step=kill_at(13))
    out = Path(tiny_config.out)
    assert not (out / "config.json").exists()  # a killed first run is not a model
    resumed = train(tiny_config, resume=True)
    steps = json.loads((resumed / "metrics.json").read_text())["steps"]
    assert steps == tiny_config.max_steps
    from safetensors.torch import load_file

    a, b = load_file(clean / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
