#!/usr/bin/env python3
"""Lays out what the FineTuneJob in examples/ reads, one directory per claim:

  <dir>/models/tiny-gpt2/        the tiny GPT-2 of tests/golden/models/gpt2/model
                                 (random weights, 2 layers, 64 wide, vocabulary
                                 320) with a byte-level tokenizer.json
  <dir>/datasets/support/train.jsonl   examples/data/support-train.jsonl

The tokenizer is the one the finetune tests use (e2e/finetune_fixtures.py):
the 256 bytes plus <|endoftext|> = 256, all inside the vocabulary. One change
to the model: the golden model has 64 positions and a rendered support-answer
prompt is about 600 bytes (one token each), so the position table is extended
to GPT-2's 1024 rows; the new rows are drawn from N(0, initializer_range) with
a fixed seed. Every run writes the same bytes; files that already hold them
are left alone, so it is cheap to run again.

    seed_examples.py <dir>
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))
from finetune_fixtures import GOLDEN, load_safetensors, tokenizer_json  # noqa: E402

POSITIONS = 1024
SEED = 20251128


def write_if_changed(path: Path, data: bytes) -> None:
    """Writes data to path unless it already holds exactly that (atomic)."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def safetensors_bytes(tensors: dict) -> bytes:
    """An F32 safetensors file of name -> array, names in sorted order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def model_files() -> dict:
    """File name -> bytes of the base model directory."""
    src = GOLDEN / "model"
    config = json.loads((src / "config.json").read_text())
    weights = load_safetensors(src / "model.safetensors")
    wpe = weights["transformer.wpe.weight"]
    rng = np.random.default_rng(SEED)
    extra = rng.normal(0.0, config["initializer_range"],
                       (POSITIONS - wpe.shape[0], wpe.shape[1])).astype("<f4")
    weights["transformer.wpe.weight"] = np.concatenate([wpe, extra])
    config["n_positions"] = POSITIONS
    return {
        "config.json": (json.dumps(config, indent=2) + "\n").encode(),
        "generation_config.json": (src / "generation_config.json").read_bytes(),
        "model.safetensors": safetensors_bytes(weights),
        "tokenizer.json": json.dumps(tokenizer_json()).encode(),
    }


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    for name, data in model_files().items():
        write_if_changed(out / "models/tiny-gpt2" / name, data)
    write_if_changed(out / "datasets/support/train.jsonl",
                     (ROOT / "examples/data/support-train.jsonl").read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
