"""Model workshop: tokenizers, training, evaluation, baselines (torch only, no Flask)."""
