#!/usr/bin/env python3
"""PyTorch side of `make bench-cuda`: runs one case on the GPU and prints one
JSON object {"case", "value", "unit", "peak_mem_mib", "baseline"} on stdout
(gpt2_train adds "flops_per_token" for the MFU).

Cases and shapes: bench/cuda_cases.py. peak_mem_mib is
torch.cuda.max_memory_allocated() over the whole case (model, optimizer
state, activations; not the allocator's cached reserve).

Usage: cuda_torch.py <case> [variant]   (variants: cuda_cases.VARIANTS;
eager by default; compile: gpt2_train; fp16, bf16: minilm_embed under
torch.autocast of that dtype, eager being fp32). Random weights from fixed
seeds.
"""
import json
import os
import sys
import time

import torch

from cuda_cases import (CASES, DECODE_BATCH, GPT2, LLAMA, MINILM, VARIANTS,
                        gpt2_flops_per_token)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sync_time():
    torch.cuda.synchronize()
    return time.perf_counter()


def gpt2_train(variant):
    """tokens/s of AdamW steps (fused) with bf16 autocast on one fixed batch"""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=GPT2["n_layer"], n_embd=GPT2["n_embd"], n_head=GPT2["n_head"],
                     vocab_size=GPT2["vocab_size"], n_positions=GPT2["n_positions"],
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    fwd = torch.compile(model) if variant == "compile" else model
    B, T = GPT2["B"], GPT2["T"]
    ids = torch.randint(0, GPT2["vocab_size"], (B, T),
                        generator=torch.Generator().manual_seed(1)).cuda()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()

    for _ in range(GPT2["warmup"]):  # allocations, optimizer state, compilation
        step()
    t0 = sync_time()
    for _ in range(GPT2["steps"]):
        step()
    return B * T * GPT2["steps"] / (sync_time() - t0), "tokens/s"


def llama_decode(batch):
    """new tokens/s over the batch of greedy generate, prefill included"""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    dims = {k: v for k, v in LLAMA.items() if k not in ("prompt", "new_tokens")}
    cfg = LlamaConfig(tie_word_embeddings=False, rms_norm_eps=1e-5, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, **dims)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model = model.to(torch.bfloat16).eval()
    prompt = torch.randint(3, cfg.vocab_size, (batch, LLAMA["prompt"]),
                           generator=torch.Generator().manual_seed(1)).cuda()
    mask = torch.ones_like(prompt)

    def run(n):
        with torch.inference_mode():
            return model.generate(prompt, attention_mask=mask, do_sample=False,
                                  max_new_tokens=n, min_new_tokens=n, pad_token_id=0)

    run(8)
    n = LLAMA["new_tokens"]
    t0 = sync_time()
    out = run(n)
    elapsed = sync_time() - t0
    assert out.shape == (batch, LLAMA["prompt"] + n), out.shape
    return batch * n / elapsed, "tokens/s"


AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}


def minilm_embed(variant):
    """sentences/s of SentenceTransformer.encode, tokenising included; the
    fp16 and bf16 variants run it under torch.autocast (weights stay fp32)"""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from contextlib import nullcontext
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(os.path.join(ROOT, "build/assets/all-MiniLM-L6-v2"),
                                device="cuda")
    model.max_seq_length = MINILM["seq"]
    words = "the quick brown fox jumps over a lazy dog while models embed text".split()
    n = MINILM["sentences"]
    # each sentence is longer than 128 tokens, so every input is cut to 128
    sentences = [" ".join(words[(i + j) % len(words)] for j in range(160)) for i in range(n)]
    cast = torch.autocast("cuda", dtype=AUTOCAST[variant]) if variant in AUTOCAST \
        else nullcontext()
    with cast:
        model.encode(sentences[:MINILM["batch"]], batch_size=MINILM["batch"])
        t0 = sync_time()
        emb = model.encode(sentences, batch_size=MINILM["batch"])
        elapsed = sync_time() - t0
    assert emb.shape == (n, 384), emb.shape
    return n / elapsed, "sentences/s"


def run_case(case, variant):
    if case == "gpt2_train":
        return gpt2_train(variant)
    if case in DECODE_BATCH:
        return llama_decode(DECODE_BATCH[case])
    return minilm_embed(variant)


PRECISION = {"gpt2_train": "bf16 autocast", "llama_decode_b1": "bf16",
             "llama_decode_b64": "bf16", "minilm_embed": "fp32"}


def baseline(case, variant):
    """e.g. "pytorch 2.15.0 eager + transformers 5.24.0, bf16 autocast" """
    if case == "minilm_embed":
        import sentence_transformers as lib
        name = "sentence-transformers"
    else:
        import transformers as lib
        name = "transformers"
    precision = f"{variant} autocast" if variant in AUTOCAST else PRECISION[case]
    mode = "eager" if variant in AUTOCAST else variant
    return (f"pytorch {torch.__version__.split('+')[0]} {mode} + {name} {lib.__version__}, "
            f"{precision}")


def main():
    case = sys.argv[1] if len(sys.argv) > 1 else ""
    variant = sys.argv[2] if len(sys.argv) > 2 else "eager"
    if case not in CASES or variant not in VARIANTS.get(case, ("eager",)):
        sys.exit(f"usage: cuda_torch.py <{'|'.join(CASES)}> [variant]: "
                 + "; ".join(f"{c}: {'|'.join(v)}" for c, v in VARIANTS.items()))
    if not torch.cuda.is_available():
        sys.exit("cuda_torch.py: torch sees no CUDA device")
    value, unit = run_case(case, variant)
    out = {"case": case, "value": value, "unit": unit,
           "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20,
           "baseline": baseline(case, variant)}
    if case == "gpt2_train":
        out["flops_per_token"] = gpt2_flops_per_token()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
