/* The llmops side of `make bench-cpu` (bench/run_cpu.py runs PyTorch on the
 * same shapes in bench/cpu_torch.py and pairs the results). One case per
 * process, so peak RSS is the case's own:
 *   gpt2_train    full training steps (zero_grad, forward with loss,
 *                 backward, AdamW) of a GPT-2 with 6 layers, width 384, 6
 *                 heads, vocab 50257, B=8, T=256, seeded random weights:
 *                 tokens/s over 3 steps after a warm-up step
 *   gpt2_lora_train  the same with a LoRA adapter (PEFT's GPT-2 default:
 *                 c_attn, r=8, alpha=16, no dropout) and the base frozen
 *   llama_decode  greedy generation with the KV cache, batch 1, on a ~15M
 *                 parameter Llama (llama2.c's stories15M shape: 6 layers, 288
 *                 wide, 6 heads, d_ff 768, vocab 32000, tied), 16-token
 *                 prompt, 128 new tokens (prefill included): tokens/s
 *   minilm_embed  all-MiniLM-L6-v2 from build/assets: tokenise and embed 128
 *                 sentences in batches of 32, each cut to 128 tokens:
 *                 sentences/s
 * Prints {"case","value","unit","peak_rss_mib"} on stdout.
 * Usage: bench_cpu <case> */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "llm_tokenizer.h"
#include "llmops_embedder.h"
#include "llmops_model.h"
#include "bench.h"

static void check(llm_err err, const char *what)
{
	bench_check("bench_cpu", err, what);
}

enum { GPT2_B = 8, GPT2_T = 256, GPT2_STEPS = 3 };

/* tokens/s of GPT2_STEPS AdamW steps after a warm-up step; with lora, only
 * a LoRA adapter on c_attn trains */
static double gpt2_steps(bool lora)
{
	struct llm_model_config c;
	struct llm_adamw opt = {
		.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
	struct llm_lora_config lc = {.r = 8, .alpha = 16.0f, .n_targets = 1, .targets = {"c_attn"}};
	llm_model *m;
	double tps;

	llm_model_config_default(&c, LLM_ARCH_GPT2);
	c.n_layer = 6;
	c.n_head = 6;
	c.d_model = 384;
	c.max_pos = GPT2_T;
	check(llm_model_new(&c, GPT2_B, GPT2_T, 0, 0, &m), "gpt2 new");
	if (lora)
		check(llm_model_lora_add(m, &lc), "lora add");
	tps = bench_train("bench_cpu", m, GPT2_B, GPT2_T, GPT2_STEPS, &opt, NULL, NULL);
	llm_model_destroy(m);
	return tps;
}

static double gpt2_train(const char **unit)
{
	*unit = "tokens/s";
	return gpt2_steps(false);
}

static double gpt2_lora_train(const char **unit)
{
	*unit = "tokens/s";
	return gpt2_steps(true);
}

static double llama_decode(const char **unit)
{
	enum { PROMPT = 16, NEW = 128 };
	struct llm_model_config c;
	int prompt[PROMPT], out[NEW];
	llm_model *m;
	double t0;

	llm_model_config_default(&c, LLM_ARCH_LLAMA);
	c.n_layer = 6;
	c.n_head = 6;
	c.n_kv_head = 6;
	c.d_model = 288;
	c.d_ff = 768;
	c.max_pos = 256;
	c.norm_eps = 1e-5f;
	c.tie_embeddings = 1;
	check(llm_model_new(&c, 1, PROMPT + NEW, LLM_MODEL_INFERENCE, 0, &m), "llama new");
	for (int i = 0; i < PROMPT; i++)
		prompt[i] = 3 + (i * 7919) % (c.vocab_size - 3);
	check(llm_model_generate(m, prompt, 1, PROMPT, NEW, NULL, out), "warm-up");
	t0 = bench_now_s();
	check(llm_model_generate(m, prompt, 1, PROMPT, NEW, NULL, out), "generate");
	llm_model_destroy(m);
	*unit = "tokens/s";
	return NEW / (bench_now_s() - t0);
}

enum { MINI_BATCH = 32, MINI_SEQ = 128, MINI_BATCHES = 4 };

static void minilm_batch(llm_embedder *e, const llm_tok *tok, int first, float *out)
{
	static int ids[MINI_BATCH * MINI_SEQ];
	int lengths[MINI_BATCH];

	for (int b = 0; b < MINI_BATCH; b++)
		lengths[b] = bench_minilm_tokenize("bench_cpu", tok, first + b, MINI_SEQ,
						   ids + b * MINI_SEQ);
	check(llm_embedder_encode(e, ids, lengths, MINI_BATCH, MINI_SEQ, out), "embed");
}

static double minilm_embed(const char **unit)
{
	llm_embedder *e;
	llm_tok *tok;
	float *out;
	double t0;

	check(llm_embedder_load(BENCH_MINILM_DIR, MINI_BATCH, MINI_SEQ, 0, &e),
	      "load " BENCH_MINILM_DIR);
	check(llm_tok_load(BENCH_MINILM_DIR, &tok), "tokenizer " BENCH_MINILM_DIR);
	out = malloc(sizeof(float) * MINI_BATCH * (size_t)llm_embedder_dim(e));
	if (!out)
		exit(1);
	minilm_batch(e, tok, 0, out); /* warm-up */
	t0 = bench_now_s();
	for (int b = 0; b < MINI_BATCHES; b++)
		minilm_batch(e, tok, b * MINI_BATCH, out);
	*unit = "sentences/s";
	double rate = MINI_BATCH * MINI_BATCHES / (bench_now_s() - t0);

	free(out);
	llm_tok_destroy(tok);
	llm_embedder_destroy(e);
	return rate;
}

static const struct {
	const char *name;
	double (*run)(const char **unit);
} cases[] = {
	{"gpt2_train", gpt2_train},
	{"gpt2_lora_train", gpt2_lora_train},
	{"llama_decode", llama_decode},
	{"minilm_embed", minilm_embed},
};

int main(int argc, char **argv)
{
	struct rusage ru;
	const char *unit = "";

	for (size_t i = 0; argc == 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(argv[1], cases[i].name))
			continue;
		double v = cases[i].run(&unit);

		getrusage(RUSAGE_SELF, &ru);
		printf("{\"case\": \"%s\", \"value\": %.3f, \"unit\": \"%s\", "
		       "\"peak_rss_mib\": %.1f}\n",
		       cases[i].name, v, unit, (double)ru.ru_maxrss / 1024.0);
		return 0;
	}
	fprintf(stderr, "usage: bench_cpu gpt2_train|gpt2_lora_train|llama_decode|minilm_embed\n");
	return 2;
}
