"""The shipped defaults: both present, loadable as the app loads them, generating, <= 30 MB."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

MODELS = Path(__file__).resolve().parents[2] / "models"
MAX_BYTES = 30 * 1024 * 1024


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("name", "prompt"), [("default-en", "It was a dark"), ("default-ko", "그날 밤")]
)
def test_shipped_model_loads_generates_and_is_small(name, prompt):
    """Does models/NAME load with the Auto classes, generate, carry a card and fit in 30 MB?"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = MODELS / name
    assert (path / "config.json").is_file(), f"{path} is missing: run `make models`"
    assert folder_size(path) <= MAX_BYTES
    assert (path / "MODEL_CARD.md").is_file()
    assert not (path / ".checkpoints").exists()
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.eos_token == "<|endoftext|>"
    ids = torch.tensor([tok.encode(prompt)])
    torch.manual_seed(0)
    out = model.generate(
        ids, max_new_tokens=12, do_sample=True, top_k=50, pad_token_id=tok.eos_token_id
    )
    assert out.shape[1] > ids.shape[1]
    assert tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
