"""The generator against plain `transformers` on the tiny GPT-2, and the model registry."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app.generation.registry import ModelRegistry
from app.generation.sampling import SamplingParams, params_for

GREEDY = SamplingParams(temperature=0, repetition_penalty=1.0, no_repeat_ngram_size=0)
PROMPTS = [
    "Once upon a time there was a lighthouse keeper",
    "옛날 옛적에 바다에 편지를 쓰는",
    'She said: "Come in, it\'s cold!" 🙂',
]


@pytest.fixture(scope="module")
def registry(tiny_model_dir: Path) -> ModelRegistry:
    return ModelRegistry({"tiny": str(tiny_model_dir)}, device="cpu", torch_threads=1)


@pytest.fixture(scope="module")
def generator(registry: ModelRegistry):
    from app.generation.generator import Generator

    return Generator(registry)


def _reference(registry: ModelRegistry, prompt: str, **kwargs):
    import torch

    loaded = registry.get("tiny")
    ids = loaded.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = loaded.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            pad_token_id=loaded.tokenizer.eos_token_id,
            **kwargs,
        )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_matches_plain_generate(registry, generator, prompt):
    """Is our greedy output identical, token for token, to plain model.generate?"""
    expected = _reference(registry, prompt, do_sample=False, max_new_tokens=30)
    result = generator.run("tiny", prompt, replace(GREEDY, max_new_tokens=30))
    assert result.token_ids == expected
    tokenizer = registry.get("tiny").tokenizer
    assert result.text == tokenizer.decode(expected, skip_special_tokens=True)


def test_sampling_matches_plain_generate_with_same_seed(registry, generator):
    """With the same seed, does a preset sample exactly what generate() samples with its kwargs?"""
    import torch

    params = params_for("balanced", 40)
    kwargs = params.generate_kwargs()
    torch.manual_seed(1234)
    expected = _reference(registry, PROMPTS[0], **kwargs)
    torch.manual_seed(1234)
    result = generator.run("tiny", PROMPTS[0], params)
    assert result.token_ids == expected


def test_streamed_deltas_are_whole_characters(generator):
    """Do the streamed deltas add up to the text, never carrying a broken character?"""
    deltas: list[str] = []
    result = generator.run(
        "tiny", PROMPTS[1], replace(GREEDY, max_new_tokens=40), on_delta=deltas.append
    )
    assert deltas
    assert "".join(deltas) == result.text
    assert all("\ufffd" not in delta for delta in deltas) or "\ufffd" in result.text


def test_should_stop_ends_generation_early(generator):
    """Does the stop flag end generation between tokens?"""
    seen: list[str] = []
    result = generator.run(
        "tiny",
        PROMPTS[0],
        replace(GREEDY, max_new_tokens=60),
        on_delta=seen.append,
        should_stop=lambda: len(seen) >= 3,
    )
    assert result.stop_reason == "cancelled"
    assert len(result.token_ids) < 60


def test_bad_words_never_generated(registry, generator):
    """Is a banned word's token never produced, even when greedy would pick it?"""
    tokenizer = registry.get("tiny").tokenizer
    first = generator.run("tiny", PROMPTS[0], replace(GREEDY, max_new_tokens=20)).token_ids
    banned_text = tokenizer.decode(first[:1])
    banned = replace(GREEDY, max_new_tokens=20, bad_words=(banned_text.strip() or banned_text,))
    result = generator.run("tiny", PROMPTS[0], banned)
    from app.generation.generator import bad_words_ids

    single = [ids[0] for ids in bad_words_ids(tokenizer, banned.bad_words) if len(ids) == 1]
    assert single
    assert not set(single) & set(result.token_ids)


def test_generate_returns_the_text(generator):
    """Is generate() the plain-text face of run()?"""
    params = replace(GREEDY, max_new_tokens=10)
    assert (
        generator.generate("tiny", PROMPTS[0], params)
        == generator.run("tiny", PROMPTS[0], params).text
    )


def test_registry_loads_each_model_once_across_threads(tiny_model_dir):
    """Do concurrent first uses of a model share one load?"""
    registry = ModelRegistry({"a": str(tiny_model_dir)}, device="cpu")
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(registry.get("a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(item.model) for item in loaded}) == 1
    model = loaded[0].model
    assert not model.training
    assert next(model.parameters()).dtype.is_floating_point
    assert loaded[0].max_context == 128


def test_fp16_checkpoint_runs_in_float32_on_cpu(tiny_model_dir, tmp_path):
    """Is a half-precision checkpoint cast to float32 when it is loaded on the CPU?"""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    half = GPT2LMHeadModel.from_pretrained(tiny_model_dir, dtype=torch.float16)
    assert next(half.parameters()).dtype == torch.float16
    half.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path)
    loaded = ModelRegistry({"half": str(tmp_path)}, device="cpu").get("half")
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_registry_check_reports_missing_and_broken_models(tiny_model_dir, tmp_path):
    """Does the readiness check name a missing directory and a broken config, loading nothing?"""
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    registry = ModelRegistry(
        {
            "ok": str(tiny_model_dir),
            "missing": str(tmp_path / "nope"),
            "broken": str(tmp_path),
            "hub": "skt/kogpt2-base-v2",
        }
    )
    problems = registry.check()
    assert problems["ok"] is None
    assert "does not exist" in problems["missing"]
    assert "config.json" in problems["broken"]
    assert not registry.ready()
    assert ModelRegistry({"ok": str(tiny_model_dir)}).ready()
    listed = {row["key"]: row for row in registry.describe()}
    assert listed["hub"]["source"] == "hub"
    assert listed["ok"]["source"] == "local"
    assert json.dumps(listed)


def test_creating_the_app_imports_no_torch(tiny_model_dir):
    """Does building the app (and its runner) leave torch and transformers unimported?"""
    code = (
        "import sys\n"
        "from app import create_app\n"
        "from app.config import TestConfig\n"
        f"create_app(TestConfig(RELAY_MODELS={{'en': {str(tiny_model_dir)!r}}}))\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
