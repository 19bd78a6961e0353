/* Helpers shared by the benchmark programs (C and CUDA C++). */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_err.h"
#include "llm_tokenizer.h"
#include "llmops_model.h"

/* Seconds on the monotonic clock. */
static inline double bench_now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Exits with "<prog>: <what>: <error name>: <detail>" when err is set. */
static inline void bench_check(const char *prog, llm_err err, const char *what)
{
	if (!err)
		return;
	fprintf(stderr, "%s: %s: %s: %s\n", prog, what, llm_errname(err), llm_last_error());
	exit(1);
}

/* tokens/s of steps AdamW training steps of m on one fixed batch (B,T) of
 * pseudo-random ids that are also its labels, after a warm-up step.
 * after_step (NULL: none) runs after every step; *last_loss (may be NULL)
 * receives the last step's loss. */
static inline double bench_train(const char *prog, llm_model *m, int B, int T, int steps,
				 const struct llm_adamw *opt, void (*after_step)(void),
				 float *last_loss)
{
	unsigned vocab = (unsigned)llm_model_get_config(m)->vocab_size;
	int *tokens = (int *)malloc(sizeof(int) * (size_t)B * (size_t)T);
	double t0 = 0.0, tps;
	float loss = 0.0f;

	if (!tokens)
		bench_check(prog, LLM_ENOMEM, "tokens");
	for (int i = 0; i < B * T; i++)
		tokens[i] = (int)(((unsigned)i * 2654435761u) % vocab);
	for (int s = 0; s <= steps; s++) {
		if (s == 1)
			t0 = bench_now_s(); /* step 0 is the warm-up */
		bench_check(prog, llm_model_zero_grad(m), "zero_grad");
		bench_check(prog, llm_model_forward(m, tokens, tokens, B, T, &loss), "forward");
		bench_check(prog, llm_model_backward(m), "backward");
		bench_check(prog, llm_model_step(m, opt, NULL), "step");
		if (after_step)
			after_step();
	}
	tps = (double)B * T * steps / (bench_now_s() - t0);
	free(tokens);
	if (last_loss)
		*last_loss = loss;
	return tps;
}

/* ---- the minilm_embed cases ---- */

#define BENCH_MINILM_DIR "build/assets/all-MiniLM-L6-v2"

/* Sentence i of the minilm_embed cases as bench/cpu_torch.py and
 * bench/cuda_torch.py build it: 160 words, so every one is longer than the
 * cases' 128 tokens. Caller frees. */
static inline char *bench_minilm_sentence(const char *prog, int i)
{
	static const char *const words[] = {"the",    "quick", "brown", "fox", "jumps",
					    "over",   "a",     "lazy",	"dog", "while",
					    "models", "embed", "text"};
	enum { NW = sizeof(words) / sizeof(words[0]), LEN = 160 };
	char *s = (char *)malloc(LEN * 8);
	size_t n = 0;

	if (!s)
		bench_check(prog, LLM_ENOMEM, "sentence");
	for (int j = 0; j < LEN; j++)
		n += (size_t)snprintf(s + n, LEN * 8 - n, "%s%s", j ? " " : "",
				      words[(i + j) % NW]);
	return s;
}

/* Tokenises sentence i into row (seq ids, zero-padded): [CLS] ... [SEP],
 * cut to seq as sentence-transformers cuts (keeping the final [SEP]).
 * Returns the length. */
static inline int bench_minilm_tokenize(const char *prog, const llm_tok *tok, int i, int seq,
					int *row)
{
	char *s = bench_minilm_sentence(prog, i);
	uint32_t *ids;
	size_t n;

	bench_check(prog, llm_tok_encode(tok, s, strlen(s), true, &ids, &n), "encode");
	if (n > (size_t)seq) {
		ids[seq - 1] = ids[n - 1];
		n = (size_t)seq;
	}
	for (size_t j = 0; j < (size_t)seq; j++)
		row[j] = j < n ? (int)ids[j] : 0;
	free(ids);
	free(s);
	return (int)n;
}

#endif
