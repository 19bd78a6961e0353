"""The model-level cases of `make bench-cuda`: their shapes, shared by the
PyTorch side (bench/cuda_torch.py) and the runner (bench/run_cuda.py). The
llmops side, build/bench/bench_cuda_model <case>, must run the same shapes.
Also the figures derived from them: training FLOPs per token for MFU and the
bytes one decode step has to read for the bandwidth bound.

  gpt2_train        GPT-2 124M (12 layers, width 768, 12 heads, vocab 50257,
                    1024 positions), random weights, B=8, T=1024: AdamW
                    training steps with bf16 autocast, tokens/s
  llama_decode_b1   a ~1.1B-parameter Llama (hidden 2048, 16 layers, 32
                    heads, 8 kv heads, intermediate 8192, vocab 32000, untied
                    LM head), random weights in bf16: greedy decoding of 128
                    new tokens after a 128-token random prompt (prefill
                    included), batch 1, new tokens/s over the batch
  llama_decode_b64  the same at batch 64
  minilm_embed      all-MiniLM-L6-v2 (build/assets), 1024 sentences cut to
                    128 tokens, batches of 128, tokenising included,
                    sentences/s; PyTorch in fp32 and under fp16 and bf16
                    autocast (llmops runs fp32)

VARIANTS lists the PyTorch baselines of each case (bench/cuda_torch.py's
second argument); a case not in it has only "eager".
"""

GPT2 = dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024,
            B=8, T=1024, warmup=3, steps=10)
LLAMA = dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
             num_key_value_heads=8, intermediate_size=8192, vocab_size=32000,
             max_position_embeddings=2048, prompt=128, new_tokens=128)
DECODE_BATCH = {"llama_decode_b1": 1, "llama_decode_b64": 64}
MINILM = dict(batch=128, seq=128, sentences=1024)
CASES = ["gpt2_train", "llama_decode_b1", "llama_decode_b64", "minilm_embed"]
VARIANTS = {"gpt2_train": ("eager", "compile"), "minilm_embed": ("eager", "fp16", "bf16")}


def gpt2_params():
    """GPT-2's parameter count, wte counted once (tied to the LM head): 124,439,808"""
    L, C = GPT2["n_layer"], GPT2["n_embd"]
    per_layer = 12 * C * C + 13 * C  # qkv, proj, fc, fcproj with biases; two LayerNorms
    return GPT2["vocab_size"] * C + GPT2["n_positions"] * C + L * per_layer + 2 * C


def gpt2_flops_per_token():
    """Training FLOPs per token as llm.c's gpt2_estimate_mfu counts them:
    6 N + 6 L C T (forward and backward of every weight, plus causal attention)."""
    return 6 * gpt2_params() + 6 * GPT2["n_layer"] * GPT2["n_embd"] * GPT2["T"]


def llama_params():
    H, I, L = LLAMA["hidden_size"], LLAMA["intermediate_size"], LLAMA["num_hidden_layers"]
    kv = H // LLAMA["num_attention_heads"] * LLAMA["num_key_value_heads"]
    per_layer = 2 * H * H + 2 * H * kv + 3 * H * I + 2 * H
    return 2 * LLAMA["vocab_size"] * H + L * per_layer + H


def decode_bytes_per_step(batch, weight_bytes=2):
    """Bytes a decode step must read from DRAM: every weight but the
    embedding table once (bf16 by default), and each sequence's K and V cache
    at the mean context length of the generation (bf16)."""
    H, L = LLAMA["hidden_size"], LLAMA["num_hidden_layers"]
    kv = H // LLAMA["num_attention_heads"] * LLAMA["num_key_value_heads"]
    weights = (llama_params() - LLAMA["vocab_size"] * H) * weight_bytes
    context = LLAMA["prompt"] + (LLAMA["new_tokens"] - 1) / 2
    return weights + batch * L * 2 * kv * context * 2
