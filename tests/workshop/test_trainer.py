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


def test_auto_bf16_times_both_and_leaves_the_run_untouched(tiny_config, monkeypatch):
    """Does --bf16 auto on a native-bf16 CPU pick the faster of two timed passes without
    touching weights, gradients or the RNG stream, and do on/off force the choice?"""
    from app.workshop import trainer
    from app.workshop.data import load_corpus
    from app.workshop.model import build_model

    config = replace(tiny_config, bf16="auto")
    split = load_corpus(Path(config.corpus))
    tokenizer = trainer.prepare_tokenizer(config, split, resume=False)
    model = build_model(config, tokenizer)
    data = trainer.prepare_data(config, tokenizer, split, config.context)
    before = [p.detach().clone() for p in model.parameters()]
    monkeypatch.setattr(trainer, "use_bf16", lambda cfg, device: cfg.bf16 != "off")
    timed: dict[int, float] = {}
    real = trainer._pass_seconds

    def record(model, x, y, bf16):
        timed[bf16] = real(model, x, y, bf16)
        return timed[bf16]

    monkeypatch.setattr(trainer, "_pass_seconds", record)
    rng = torch.random.get_rng_state()
    chosen = trainer.choose_bf16(model, data, config, torch.device("cpu"))
    assert set(timed) == {0, 1} and chosen == (timed[1] < timed[0])
    assert torch.equal(rng, torch.random.get_rng_state())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    timed.clear()
    for forced, expected in (("on", True), ("off", False)):
        assert trainer.choose_bf16(model, data, replace(config, bf16=forced), "cpu") is expected
    assert not timed  # forced choices are not timed


def test_pretrain_then_fine_tune_records_the_lineage(tiny_config, tmp_path):
    """Pre-training with an extra folder, then fine-tuning from it: does the fine-tuned card
    name the pre-training folder and stage, list what hygiene removed, and does --dropout
    reach the loaded checkpoint?"""
    import json
    from dataclasses import replace

    from tests.workshop.conftest import story_text

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "more.txt").write_text("CHAPTER IV.\n\n" + story_text(7), encoding="utf-8")
    pre = train(replace(tiny_config, extra_corpus=[str(extra)], out=str(tmp_path / "pre")))
    metrics = json.loads((pre / "metrics.json").read_text())
    assert metrics["config"]["extra_corpus"] == [str(extra)]
    assert metrics["hygiene"]["rules"]["headings"]["matches"] == 1
    fine = replace(tiny_config, init=str(pre), out=str(tmp_path / "fine"), dropout=0.2)
    out = train(fine)
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Pre-training" in card and "`extra/`" in card
    assert f"trained for {metrics['train_minutes']} min ({metrics['steps']} steps" in card
    assert "| headings |" in card and "Corpus hygiene" in card
    assert json.loads((out / "config.json").read_text())["resid_pdrop"] == 0.2
