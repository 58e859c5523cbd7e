"""The batched generation engine: continuous batching over a slot KV cache, fast sampling.

One `Engine` per (model, device, precision) per process runs a background step
loop: requests that arrive while it is busy are prefilled and join the running
batch at the next step, each with its own prompt length, sampling settings,
stop rules and budget; finished or cancelled sequences leave without stopping
the others. The modules:

- model.py   GPT-2 forward written on the model's own weights, with a KV cache
             of fixed slots (one slot per running sequence, its own positions)
- sampler.py batched logits processing and sampling (top-k before the nucleus
             sort, repetition penalty, no-repeat n-grams, all vectorised)
- quant.py   fp32 / bf16 / int8 (dynamic quantisation of the linear layers)
- requests.py Request, RequestHandle and EngineResult (what a caller holds)
- batch.py   the Engine with its step loop
- adapter.py the runner-facing `EngineGenerator` (same interface as
             app.generation.generator.Generator) and the per-process engine registry

Importing this package imports nothing heavy; the submodules import torch.
"""

from __future__ import annotations

ENGINES = ("batched", "hf")
PRECISIONS = ("fp32", "bf16", "int8")
