"""Bad input: a clear message, a non-zero exit and no model half-written in --out."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.workshop.checkpoints import checkpoint_dir
from app.workshop.cli import model_cli

TINY = [
    "--vocab-size",
    "300",
    "--layers",
    "1",
    "--width",
    "16",
    "--heads",
    "2",
    "--context",
    "16",
    "--batch",
    "4",
    "--warmup",
    "1",
    "--threads",
    "1",
]


def run_train(corpus: Path, out: Path, *extra: str):
    args = ["train", "--corpus", str(corpus), "--out", str(out), *TINY, *extra]
    return CliRunner().invoke(model_cli, args)


def assert_clean_failure(result, out: Path, message: str) -> None:
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (out / "config.json").exists()


def test_empty_corpus_folder(tmp_path):
    """Does an empty corpus folder fail with a clear message?"""
    (tmp_path / "c").mkdir()
    result = run_train(tmp_path / "c", tmp_path / "out", "--max-steps", "2")
    assert_clean_failure(result, tmp_path / "out", "has no text files")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"\x89PNG\x00\x01\x02", "looks binary"),
        ("caf\u00e9 latin-1".encode("latin-1"), "is not UTF-8"),
    ],
)
def test_bad_file(tmp_path, corpus, content, message):
    """Do empty, binary and non-UTF-8 files fail with their name in the message?"""
    (corpus / "bad.txt").write_bytes(content)
    result = run_train(corpus, tmp_path / "out", "--max-steps", "2")
    assert_clean_failure(result, tmp_path / "out", message)
    assert "bad.txt" in result.output


def test_corpus_too_small_for_context(tmp_path):
    """Does a corpus shorter than one window fail and name the context?"""
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text("tiny text here\n", encoding="utf-8")
    result = run_train(folder, tmp_path / "out", "--max-steps", "2", "--context", "512")
    assert_clean_failure(result, tmp_path / "out", "too small for a context of 512")


def test_resume_without_checkpoint(tmp_path, corpus):
    """Does --resume with nothing to resume fail clearly?"""
    result = run_train(corpus, tmp_path / "out", "--max-steps", "2", "--resume")
    assert_clean_failure(result, tmp_path / "out", "nothing to resume")


def interrupted_run(corpus: Path, out: Path) -> None:
    """A run killed after its first checkpoint (step 2), leaving only OUT/.checkpoints."""
    from app.workshop.model import TrainConfig
    from app.workshop.trainer import train

    def die(step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt

    config = TrainConfig(
        corpus=str(corpus),
        out=str(out),
        vocab_size=300,
        n_layer=1,
        n_embd=16,
        n_head=2,
        context=16,
        batch_size=4,
        warmup_steps=1,
        max_steps=6,
        eval_every=2,
        eval_windows=2,
        threads=1,
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, on_step=die)


def test_resume_with_different_config(tmp_path, corpus):
    """Does --resume refuse a config that differs from the checkpoint's, naming the field?"""
    out = tmp_path / "out"
    interrupted_run(corpus, out)
    result = run_train(
        corpus, out, "--max-steps", "6", "--eval-every", "2", "--resume", "--lr", "0.01"
    )
    assert_clean_failure(result, out, "different config")
    assert "lr" in result.output


def test_corrupt_checkpoint(tmp_path, corpus):
    """Does a truncated checkpoint file fail with a clear message?"""
    out = tmp_path / "out"
    interrupted_run(corpus, out)
    state = checkpoint_dir(out) / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    result = run_train(corpus, out, "--max-steps", "6", "--eval-every", "2", "--resume")
    assert_clean_failure(result, out, "corrupt")


def test_missing_model_for_eval(tmp_path, corpus):
    """Does eval of a folder without a model fail clearly?"""
    args = ["eval", "--model", str(tmp_path / "nope"), "--corpus", str(corpus)]
    result = CliRunner().invoke(model_cli, args)
    assert result.exit_code != 0
    assert "no model at" in result.output


def test_out_folder_that_is_not_a_model(tmp_path, corpus):
    """Does training refuse to replace a non-empty folder that holds no model?"""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = run_train(corpus, out, "--max-steps", "2")
    assert result.exit_code != 0
    assert (out / "notes.txt").read_text() == "keep me"
