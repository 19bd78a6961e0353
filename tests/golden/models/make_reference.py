#!/usr/bin/env python3
"""Reference outputs for the decoder models (gpt2, llama) from torch,
transformers and peft, for the parity tests tests/unit/test_model_*.c.

For each architecture a tiny random fp32 model (2 layers, width 64, vocab 320,
no dropout) is saved with save_pretrained into <arch>/model/, and one fixed
batch (B=2, T=16; some labels are -100) gives:
  reference.safetensors  "logits" (B,T,V) and "grad.<name>" for every
                         parameter after one backward of the loss (HF layout,
                         e.g. GPT-2 Conv1D weights are (in, out));
  reference.json         input_ids, labels, loss; "train": the losses of 10
                         AdamW steps on that batch with global-norm clipping
                         (losses[i] is step i's forward, before its update);
                         "lora": the same for 10 steps of a PEFT LoRA adapter
                         starting from lora_init/ and ending at lora_final/;
                         "greedy": 20 tokens decoded greedily with the
                         transformers KV cache after a 4-token prompt.
llama is untied with grouped-query heads (4 query, 2 key/value heads) and a
non-default RoPE theta; llama_tied ties the embeddings and has a single
key/value head (logits, loss, gradients and greedy tokens only).

Run from the repository root with `make golden`.
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB, B, T, PROMPT, NEW_TOKENS, STEPS = 320, 2, 16, 4, 20, 10
TRAIN = {"lr": 5e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "max_grad_norm": 1.0}
LORA_TRAIN = {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}


def gpt2_config():
    return GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      activation_function="gelu_new", initializer_range=0.2,
                      bos_token_id=0, eos_token_id=0)


def llama_config(tied):
    return LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=172,
                       num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=1 if tied else 2, max_position_embeddings=64,
                       rms_norm_eps=1e-6, rope_theta=50000.0, tie_word_embeddings=tied,
                       initializer_range=0.1, attention_bias=False, mlp_bias=False,
                       bos_token_id=0, eos_token_id=0)


ARCHS = {
    "gpt2": (GPT2LMHeadModel, gpt2_config, ["c_attn", "c_proj", "c_fc"], True),
    "llama": (LlamaForCausalLM, lambda: llama_config(False),
              ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], True),
    "llama_tied": (LlamaForCausalLM, lambda: llama_config(True), None, False),
}


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (B, T), generator=g)
    labels = ids.clone()
    labels[0, 3] = -100
    labels[1, 12:] = -100
    return ids, labels


def load(cls, d):
    model = cls.from_pretrained(d, attn_implementation="eager", torch_dtype=torch.float32)
    model.train()  # dropout is 0, so train and eval agree
    return model


def train(model, params, ids, labels, cfg, clip):
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                            weight_decay=cfg["weight_decay"], foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"])
        opt.step()
    return losses


@torch.no_grad()
def greedy(model, prompt):
    out = model(input_ids=prompt, use_cache=True)
    past, tokens = out.past_key_values, []  # a transformers DynamicCache
    for _ in range(NEW_TOKENS):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(int(nxt))
        out = model(input_ids=nxt, past_key_values=past, use_cache=True)
        past = out.past_key_values
    return tokens


def save_adapter(model, d):
    """save_pretrained, made reproducible: no machine-specific base path, no
    model card, target modules in a fixed order."""
    model.save_pretrained(d)
    os.remove(os.path.join(d, "README.md"))
    path = os.path.join(d, "adapter_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = "../model"
    cfg["target_modules"] = sorted(cfg["target_modules"])  # peft keeps a set
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def lora(cls, mdir, targets, fan_in_fan_out, ids, labels, outdir):
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                     fan_in_fan_out=fan_in_fan_out, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(load(cls, mdir), cfg)
    save_adapter(model, os.path.join(outdir, "lora_init"))
    params = [p for p in model.parameters() if p.requires_grad]
    losses = train(model, params, ids, labels, LORA_TRAIN, clip=False)
    save_adapter(model, os.path.join(outdir, "lora_final"))
    # check the saved adapter reloads onto the base model
    PeftModel.from_pretrained(load(cls, mdir), os.path.join(outdir, "lora_final"))
    return dict(LORA_TRAIN, r=4, alpha=8, dropout=0.0, target_modules=targets, losses=losses)


def generate(arch, seed):
    cls, make_config, lora_targets, trains = ARCHS[arch]
    outdir = os.path.join(HERE, arch)
    shutil.rmtree(outdir, ignore_errors=True)
    mdir = os.path.join(outdir, "model")
    torch.manual_seed(seed)
    cls(make_config()).save_pretrained(mdir)

    ids, labels = batch(seed)
    model = load(cls, mdir)
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    tensors = {"logits": out.logits.detach().contiguous()}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(outdir, "reference.safetensors"))

    ref = {"input_ids": ids.tolist(), "labels": labels.tolist(), "loss": out.loss.item(),
           "greedy": {"prompt": ids[0, :PROMPT].tolist(),
                      "tokens": greedy(load(cls, mdir), ids[:1, :PROMPT])}}
    if trains:
        m = load(cls, mdir)
        ref["train"] = dict(TRAIN, losses=train(m, list(m.parameters()), ids, labels, TRAIN,
                                                clip=True))
        ref["lora"] = lora(cls, mdir, lora_targets, arch == "gpt2", ids, labels, outdir)
    with open(os.path.join(outdir, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(f"{arch}: loss {ref['loss']:.6f}, {len(tensors) - 1} gradients")


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for seed, arch in enumerate(ARCHS):
        generate(arch, 1000 + seed)


if __name__ == "__main__":
    main()
