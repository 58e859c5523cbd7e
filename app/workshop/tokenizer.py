"""Tokenizer training: byte-level BPE or a character vocabulary, saved for AutoTokenizer.

Both kinds are Hugging Face `tokenizers` pipelines wrapped in a
`PreTrainedTokenizerFast` whose bos/eos/pad token is GPT-2's `<|endoftext|>`,
so `AutoTokenizer.from_pretrained(dir)` loads them. Byte-level BPE round-trips
any text exactly (Korean, emoji, odd whitespace); the character vocabulary
round-trips every character seen in training and maps the rest to `<unk>`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from app.workshop.data import WorkshopError

EOT = "<|endoftext|>"
UNK = "<unk>"
TOKENIZER_KINDS = ("bpe", "char")


def train_bpe(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A GPT-2 style byte-level BPE trained on `texts`."""
    if vocab_size < 257 + 1:
        raise WorkshopError("a byte-level BPE needs --vocab-size of at least 258 (256 bytes + 2)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def train_char(texts: Sequence[str], vocab_size: int | None = None) -> Tokenizer:
    """One token per character (the most frequent `vocab_size` characters, the rest `<unk>`)."""
    counts = Counter()
    for text in texts:
        counts.update(text)
    keep = [c for c, _ in counts.most_common(vocab_size - 2 if vocab_size else None)]
    vocab = {EOT: 0, UNK: 1} | {c: i + 2 for i, c in enumerate(sorted(keep))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Every character is its own pre-token; Fuse joins them back without spaces.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([EOT, UNK])
    return tok


def wrap(tok: Tokenizer, kind: str) -> PreTrainedTokenizerFast:
    """The transformers view of a trained pipeline, with GPT-2's special tokens set."""
    extra = {"unk_token": UNK} if kind == "char" else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        pad_token=EOT,
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
        **extra,
    )


def train_tokenizer(
    texts: Sequence[str], kind: str = "bpe", vocab_size: int = 8192
) -> PreTrainedTokenizerFast:
    """Train a tokenizer of `kind` ("bpe" or "char") on `texts`."""
    if kind not in TOKENIZER_KINDS:
        raise WorkshopError(f"unknown tokenizer kind {kind!r}; use one of {TOKENIZER_KINDS}")
    raw = train_bpe(texts, vocab_size) if kind == "bpe" else train_char(texts, vocab_size)
    return wrap(raw, kind)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    """Write tokenizer.json and its config so AutoTokenizer can load `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer (local folder or hub id), as the app does."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise WorkshopError(f"cannot load a tokenizer from {path}: {exc}") from exc
    if tok.eos_token_id is None:
        tok.add_special_tokens({"eos_token": EOT})
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
