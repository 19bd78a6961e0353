#!/usr/bin/env python3
"""PyTorch side of `make bench-cpu`: runs one case and prints one JSON object
{"case", "value", "unit", "peak_rss_mib", "baseline"} on stdout.

Cases (the same shapes as bench/bench_cpu.c):
  gpt2_train    GPT-2 style, 6 layers, width 384, 6 heads, vocab 50257,
                B=8, T=256: full AdamW training steps, tokens/s (eager)
  gpt2_lora_train  the same model with a peft LoRA adapter (c_attn, r=8,
                alpha=16, no dropout), only the adapter trains
  llama_decode  llama style, ~15M parameters (dim 288, 6 layers, 6 heads,
                hidden 768, vocab 32000, tied): greedy decode at batch 1 with
                transformers generate, 16-token prompt, new tokens/s
  minilm_embed  all-MiniLM-L6-v2 (build/assets) with sentence-transformers,
                batch 32 of 128-token inputs, sentences/s

Usage: cpu_torch.py <case> [threads]. Random weights from fixed seeds.
"""
import json
import os
import resource
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2 = dict(n_layer=6, n_embd=384, n_head=6, vocab_size=50257, n_positions=256, B=8, T=256)
LLAMA = dict(hidden_size=288, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=6,
             intermediate_size=768, vocab_size=32000, max_position_embeddings=256,
             prompt=16, new_tokens=128)
MINILM = dict(batch=32, seq=128, batches=4)


def gpt2_model():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=GPT2["n_layer"], n_embd=GPT2["n_embd"], n_head=GPT2["n_head"],
                     vocab_size=GPT2["vocab_size"], n_positions=GPT2["n_positions"],
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg)


def train_steps(model, params, steps=3):
    """tokens/s of AdamW steps on one fixed batch, after a warm-up step"""
    model.train()
    opt = torch.optim.AdamW(params, lr=1e-4)
    B, T = GPT2["B"], GPT2["T"]
    ids = torch.randint(0, GPT2["vocab_size"], (B, T), generator=torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad(set_to_none=False)
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()

    step()  # warm-up: allocations, optimizer state
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return B * T * steps / (time.perf_counter() - t0), "tokens/s"


def gpt2_train():
    model = gpt2_model()
    return train_steps(model, list(model.parameters()))


def gpt2_lora_train():
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(gpt2_model(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                    target_modules=["c_attn"],
                                                    fan_in_fan_out=True))
    return train_steps(model, [p for p in model.parameters() if p.requires_grad])


def llama_decode():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(tie_word_embeddings=True, rms_norm_eps=1e-5, bos_token_id=1,
                      eos_token_id=2, **{k: v for k, v in LLAMA.items()
                                         if k not in ("prompt", "new_tokens")})
    model = LlamaForCausalLM(cfg).eval()
    prompt = torch.randint(3, cfg.vocab_size, (1, LLAMA["prompt"]),
                           generator=torch.Generator().manual_seed(1))
    n = LLAMA["new_tokens"]

    def run():
        with torch.inference_mode():
            return model.generate(prompt, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                                  pad_token_id=0)

    run()
    t0 = time.perf_counter()
    out = run()
    assert out.shape[1] == LLAMA["prompt"] + n
    return n / (time.perf_counter() - t0), "tokens/s"


def minilm_embed():
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(os.path.join(ROOT, "build/assets/all-MiniLM-L6-v2"),
                                device="cpu")
    model.max_seq_length = MINILM["seq"]
    words = "the quick brown fox jumps over a lazy dog while models embed text".split()
    n = MINILM["batch"] * MINILM["batches"]
    # each sentence is longer than 128 tokens, so every input is cut to 128
    sentences = [" ".join(words[(i + j) % len(words)] for j in range(160)) for i in range(n)]
    model.encode(sentences[:MINILM["batch"]], batch_size=MINILM["batch"])
    t0 = time.perf_counter()
    emb = model.encode(sentences, batch_size=MINILM["batch"])
    assert emb.shape == (n, 384)
    return n / (time.perf_counter() - t0), "sentences/s"


CASES = {"gpt2_train": gpt2_train, "gpt2_lora_train": gpt2_lora_train,
         "llama_decode": llama_decode, "minilm_embed": minilm_embed}


def main():
    case = sys.argv[1]
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    value, unit = CASES[case]()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": case, "value": value, "unit": unit, "peak_rss_mib": peak,
                      "baseline": f"pytorch {torch.__version__.split('+')[0]} eager"
                                  f"{' + peft' if 'lora' in case else ''}, "
                                  f"{torch.get_num_threads()} threads"}))


if __name__ == "__main__":
    main()
