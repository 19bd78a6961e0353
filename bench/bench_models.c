/* Decoder model benchmarks on the CPU kernels (build/bench/bench_models):
 *   gpt2_train   one training step (zero_grad, forward with loss, backward,
 *                AdamW) of a 6-layer, 384-wide, 6-head GPT-2 (50,257 vocab)
 *                from seeded random weights, B=8, T=256: ms/step, tokens/s
 *   llama_decode greedy decoding with the KV cache on a 15M-parameter Llama
 *                (the llama2.c stories15M shape: 6 layers, 288 wide, 6
 *                heads, d_ff 768, 32,000 vocab, tied), one row, 16-token
 *                prompt, 240 new tokens: tokens/s of the decode steps
 * One JSON object per line: {"bench","metric","value","unit"}.
 * Usage: bench_models [train_steps]   (default 3; the first is a warm-up) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llmops_model.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check(llm_err err, const char *what)
{
	if (!err)
		return;
	fprintf(stderr, "bench_models: %s: %s: %s\n", what, llm_errname(err), llm_last_error());
	exit(1);
}

static void emit(const char *bench, const char *metric, double value, const char *unit)
{
	printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\"}\n", bench,
	       metric, value, unit);
	fflush(stdout);
}

static void bench_gpt2_train(int steps)
{
	enum { B = 8, T = 256 };
	struct llm_model_config c;
	struct llm_adamw opt = {.lr = 3e-4f,
				.beta1 = 0.9f,
				.beta2 = 0.95f,
				.eps = 1e-8f,
				.weight_decay = 0.1f,
				.max_grad_norm = 1.0f};
	static int tokens[B * T];
	llm_model *m;
	double t0 = 0.0, total;
	float loss = 0.0f;

	llm_model_config_default(&c, LLM_ARCH_GPT2);
	c.n_layer = 6;
	c.n_head = 6;
	c.d_model = 384;
	check(llm_model_new(&c, B, T, 0, 1, &m), "gpt2 new");
	for (int i = 0; i < B * T; i++)
		tokens[i] = (int)((i * 2654435761u) % (unsigned)c.vocab_size);
	for (int s = 0; s < steps; s++) {
		if (s == 1 || steps == 1)
			t0 = now_s();
		check(llm_model_zero_grad(m), "zero_grad");
		check(llm_model_forward(m, tokens, tokens, B, T, &loss), "forward");
		check(llm_model_backward(m), "backward");
		check(llm_model_step(m, &opt, NULL), "step");
	}
	total = (now_s() - t0) / (steps > 1 ? steps - 1 : 1);
	emit("gpt2_train", "params", (double)llm_model_num_params(m), "count");
	emit("gpt2_train", "step_time", total * 1e3, "ms");
	emit("gpt2_train", "throughput", B * T / total, "tokens/s");
	emit("gpt2_train", "loss", loss, "nats");
	llm_model_destroy(m);
}

static void bench_llama_decode(void)
{
	enum { PROMPT = 16, NEW = 240 };
	struct llm_model_config c;
	int prompt[PROMPT], *out = malloc(NEW * sizeof(int));
	llm_model *m;
	double t0;

	if (!out)
		exit(1);
	llm_model_config_default(&c, LLM_ARCH_LLAMA);
	c.n_layer = 6;
	c.n_head = 6;
	c.d_model = 288;
	c.d_ff = 768;
	c.max_pos = 256;
	c.tie_embeddings = 1;
	check(llm_model_new(&c, 1, PROMPT + NEW, LLM_MODEL_INFERENCE, 2, &m), "llama new");
	for (int i = 0; i < PROMPT; i++)
		prompt[i] = 1 + i * 97;
	check(llm_model_prefill(m, prompt, 1, PROMPT), "prefill"); /* warm-up */
	t0 = now_s();
	check(llm_model_generate(m, prompt, 1, PROMPT, NEW, NULL, out), "generate");
	emit("llama_decode", "params", (double)llm_model_num_params(m), "count");
	emit("llama_decode", "greedy", NEW / (now_s() - t0), "tokens/s");
	free(out);
	llm_model_destroy(m);
}

int main(int argc, char **argv)
{
	int steps = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 3;

	bench_llama_decode();
	bench_gpt2_train(steps > 0 ? steps : 1);
	return 0;
}
