/* The llmops side of the CUDA model benchmarks (a PyTorch script pairs it
 * with the same shapes). One case per process, on device 0, the model
 * created with LLM_MODEL_CUDA or LLM_EMBEDDER_CUDA (fp32 everywhere:
 * cuBLASLt GEMMs without TF32) or, with --bf16 (decoders only),
 * LLM_MODEL_CUDA | LLM_MODEL_BF16 (bf16 products with fp32 accumulation in
 * every matmul, fp32 tensors and everything else):
 *   gpt2_train       full training steps (zero_grad, forward with loss,
 *                    backward, AdamW lr 1e-4, betas 0.9/0.999, eps 1e-8,
 *                    weight decay 0.01) of GPT-2 124M (12 layers, 768 wide,
 *                    12 heads, vocab 50257, tied), T=1024, B=8 or --batch N,
 *                    seeded random weights: tokens/s over --steps (5) steps
 *                    after a warm-up step, and MFU
 *   llama_decode_b1  greedy generation with the KV cache of a ~1.1B Llama
 *   llama_decode_b64 (hidden 2048, 16 layers, 32 heads, 8 KV heads,
 *                    intermediate 8192, vocab 32000, untied lm_head, seeded
 *                    random weights), batch 1 or 64, 128-token prompt, 128
 *                    new tokens per row (prefill included), after a warm-up
 *                    generation: tokens/s over all rows, and the fraction of
 *                    the memory-bandwidth bound
 *   minilm_embed     all-MiniLM-L6-v2 from build/assets (`make deps`):
 *                    tokenise (lib/llm_tokenizer, on the host) and embed
 *                    1024 sentences, each cut to 128 tokens, in batches of
 *                    128 or --batch N, after a warm-up batch: sentences/s,
 *                    and MFU
 *
 * Output, one JSON line: {"case","value","unit","peak_mem_mib","mfu" or
 * "bw_frac","peak","backend","precision"} (precision "fp32" or "bf16"). peak_mem_mib is the most
 * device memory in use (as cudaMemGetInfo reports) above what was in use right after device
 * initialisation, sampled after creation and after every step, so it
 * leaves out the CUDA context as torch.cuda.max_memory_allocated does.
 *
 * MFU = (6 N + 12 L C T) * tokens/s / peak, with N = llm_model_num_params()
 * (the tied embedding counted once, as its lm_head matmul runs once) and
 * 12 L C T the attention score and value matmuls forward and backward
 * without causal savings (PaLM's appendix B convention). minilm_embed's MFU
 * counts the encoder's forward only: (2 N + 4 L C T) * tokens/s / peak
 * with N the layers' matmul weights, L (4 C^2 + 2 C I); the embeddings,
 * norms and pooling do no matmul work. bw_frac = weight
 * bytes read per forward pass (every parameter but the embedding table,
 * of which only B rows are read; fp32) * forward passes / s / peak
 * bandwidth; it leaves out KV-cache and activation traffic, so it is an
 * upper bound on how close decoding is to the weight-streaming limit.
 * Peaks, from NVIDIA's datasheets (dense, no sparsity): H100 SXM5 989.4
 * TFLOP/s BF16 and 3.35 TB/s HBM3; H100 PCIe 756 TFLOP/s and 2.0 TB/s; H200
 * 989.4 TFLOP/s and 4.8 TB/s. Other devices use the H100 SXM figures and
 * say so in "peak".
 *
 * Usage: bench_cuda_model <case> [--batch N] [--steps N] [--bf16]
 * (--steps: gpt2_train; --bf16: not minilm_embed) */
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "llm_err.h"
#include "llm_tokenizer.h"
#include "llmops_embedder.h"
#include "llmops_model.h"
#include "bench.h"
}

#define CUDA_CHECK(call)                                                     \
	do {                                                                 \
		cudaError_t err_ = (call);                                   \
		if (err_ != cudaSuccess) {                                   \
			fprintf(stderr, "bench_cuda_model: %s: %s\n", #call, \
				cudaGetErrorString(err_));                   \
			exit(1);                                             \
		}                                                            \
	} while (0)

struct peak {
	const char *name; /* matched against the device name */
	double flops;	  /* dense BF16 FLOP/s */
	double bw;	  /* bytes/s */
};

static const struct peak peaks[] = {
	{"H100 PCIe", 756e12, 2.0e12},
	{"H200", 989.4e12, 4.8e12},
	{"H100", 989.4e12, 3.35e12},
};

static struct peak device_peak;
static size_t base_used; /* device bytes in use after initialisation */
static size_t max_used;
static int opt_batch, opt_steps = 5; /* opt_batch 0: the case's own */
static bool opt_bf16;		     /* --bf16: LLM_MODEL_BF16 */

/* LLM_MODEL_CUDA, plus LLM_MODEL_BF16 with --bf16 */
static unsigned cuda_flags(void)
{
	return LLM_MODEL_CUDA | (opt_bf16 ? LLM_MODEL_BF16 : 0u);
}

static void check(llm_err err, const char *what)
{
	bench_check("bench_cuda_model", err, what);
}

static size_t used_bytes(void)
{
	size_t free_b, total_b;

	CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
	return total_b - free_b;
}

/* Records the device memory in use now into the peak. */
static void sample_memory(void)
{
	size_t u = used_bytes();

	max_used = u > max_used ? u : max_used;
}

/* The peak figures of device 0, by name; H100 SXM's when unknown. */
static struct peak find_peak(void)
{
	struct cudaDeviceProp prop;
	struct peak p = {"H100 SXM (assumed)", 989.4e12, 3.35e12};

	CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
	for (size_t i = 0; i < sizeof(peaks) / sizeof(peaks[0]); i++)
		if (strstr(prop.name, peaks[i].name)) {
			p = peaks[i];
			if (!strcmp(p.name, "H100"))
				p.name = "H100 SXM";
			break;
		}
	return p;
}

/* ---- cases ---- */

struct result {
	double value;
	const char *unit;
	const char *ratio_key; /* "mfu" or "bw_frac" */
	double ratio;
};

enum { GPT2_T = 1024 };

static struct result gpt2_train(void)
{
	struct llm_model_config c;
	struct llm_adamw opt = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.0f, 0};
	int B = opt_batch ? opt_batch : 8;
	llm_model *m;
	double tps, flops_per_token;
	float loss;

	llm_model_config_default(&c, LLM_ARCH_GPT2);
	check(llm_model_new(&c, B, GPT2_T, cuda_flags(), 0, &m), "gpt2 new");
	sample_memory();
	tps = bench_train("bench_cuda_model", m, B, GPT2_T, opt_steps, &opt, sample_memory, &loss);
	flops_per_token = 6.0 * (double)llm_model_num_params(m) +
			  12.0 * c.n_layer * c.d_model * (double)GPT2_T;
	fprintf(stderr, "gpt2_train: B %d, T %d, %d steps, last loss %.4f\n", B, GPT2_T, opt_steps,
		(double)loss);
	llm_model_destroy(m);
	return {tps, "tokens/s", "mfu", flops_per_token * tps / device_peak.flops};
}

enum { PROMPT = 128, NEW = 128 }; /* as bench/cuda_cases.py */

/* fp32 bytes of every parameter a forward pass reads in full */
static double weight_bytes(const llm_model *m)
{
	const struct llm_model_config *c = llm_model_get_config(m);

	return 4.0 * ((double)llm_model_num_params(m) -
		      (c->tie_embeddings ? 0.0 : (double)c->vocab_size * c->d_model));
}

static struct result llama_decode(int B)
{
	struct llm_model_config c;
	int *prompt = (int *)malloc(sizeof(int) * (size_t)B * PROMPT);
	int *out = (int *)malloc(sizeof(int) * (size_t)B * NEW);
	llm_model *m;
	double t0, dt;

	if (!prompt || !out)
		check(LLM_ENOMEM, "prompt");
	llm_model_config_default(&c, LLM_ARCH_LLAMA);
	c.d_model = 2048;
	c.n_layer = 16;
	c.n_head = 32;
	c.n_kv_head = 8;
	c.d_ff = 8192;
	c.vocab_size = 32000;
	c.norm_eps = 1e-5f;
	c.tie_embeddings = 0;
	check(llm_model_new(&c, B, PROMPT + NEW, cuda_flags() | LLM_MODEL_INFERENCE, 0, &m),
	      "llama new");
	sample_memory();
	for (int i = 0; i < B * PROMPT; i++)
		prompt[i] = 3 + (i * 7919) % (c.vocab_size - 3);
	check(llm_model_generate(m, prompt, B, PROMPT, NEW, NULL, out), "warm-up");
	sample_memory();
	t0 = bench_now_s();
	check(llm_model_generate(m, prompt, B, PROMPT, NEW, NULL, out), "generate");
	dt = bench_now_s() - t0;
	sample_memory();
	fprintf(stderr, "llama_decode: B %d, %zu parameters, %.1f ms per token step\n", B,
		llm_model_num_params(m), 1e3 * dt / NEW);
	/* NEW forward passes: the prefill and NEW - 1 decode steps */
	double frac = weight_bytes(m) * NEW / dt / device_peak.bw;

	llm_model_destroy(m);
	free(prompt);
	free(out);
	return {(double)B * NEW / dt, "tokens/s", "bw_frac", frac};
}

static struct result llama_decode_b1(void)
{
	return llama_decode(1);
}

static struct result llama_decode_b64(void)
{
	return llama_decode(64);
}

enum { MINI_BATCH = 128, MINI_SEQ = 128, MINI_SENTENCES = 1024 }; /* as bench/cuda_cases.py */

/* Tokenises sentences [first, first + B) into ids (B, MINI_SEQ) and embeds
 * them into out; returns the tokens embedded. */
static long minilm_batch(llm_embedder *e, const llm_tok *tok, int first, int B, int *ids,
			 int *lengths, float *out)
{
	long tokens = 0;

	for (int b = 0; b < B; b++) {
		lengths[b] = bench_minilm_tokenize("bench_cuda_model", tok, first + b, MINI_SEQ,
						   ids + (size_t)b * MINI_SEQ);
		tokens += lengths[b];
	}
	check(llm_embedder_encode(e, ids, lengths, B, MINI_SEQ, out), "embed");
	return tokens;
}

static struct result minilm_embed(void)
{
	int B = opt_batch ? opt_batch : MINI_BATCH;
	int *ids = (int *)malloc(sizeof(int) * (size_t)B * MINI_SEQ);
	int *lengths = (int *)malloc(sizeof(int) * (size_t)B);
	struct llm_embedder_info info;
	llm_embedder *e;
	llm_tok *tok;
	float *out;
	long tokens = 0;
	double t0, dt, weights, flops_per_token;

	check(llm_embedder_load(BENCH_MINILM_DIR, B, MINI_SEQ, LLM_EMBEDDER_CUDA, &e),
	      "load " BENCH_MINILM_DIR);
	sample_memory();
	check(llm_tok_load(BENCH_MINILM_DIR, &tok), "tokenizer " BENCH_MINILM_DIR);
	llm_embedder_info(e, &info);
	out = (float *)malloc(sizeof(float) * (size_t)B * info.dim);
	if (!ids || !lengths || !out)
		check(LLM_ENOMEM, "batch buffers");
	minilm_batch(e, tok, 0, B, ids, lengths, out); /* warm-up */
	sample_memory();
	t0 = bench_now_s();
	for (int first = 0; first < MINI_SENTENCES; first += B) {
		int n = MINI_SENTENCES - first < B ? MINI_SENTENCES - first : B;

		tokens += minilm_batch(e, tok, first, n, ids, lengths, out);
		sample_memory();
	}
	dt = bench_now_s() - t0;
	weights = (double)info.layers * (4.0 * info.dim * info.dim + 2.0 * info.dim * info.ffn);
	flops_per_token = 2.0 * weights + 4.0 * info.layers * info.dim * (double)MINI_SEQ;
	fprintf(stderr, "minilm_embed: B %d, T %d, %d sentences, %ld tokens, %.2f ms per batch\n",
		B, MINI_SEQ, MINI_SENTENCES, tokens, 1e3 * dt * B / MINI_SENTENCES);
	llm_tok_destroy(tok);
	llm_embedder_destroy(e);
	free(ids);
	free(lengths);
	free(out);
	return {MINI_SENTENCES / dt, "sentences/s", "mfu",
		flops_per_token * (double)tokens / dt / device_peak.flops};
}

static const struct {
	const char *name;
	struct result (*run)(void);
} cases[] = {
	{"gpt2_train", gpt2_train},
	{"llama_decode_b1", llama_decode_b1},
	{"llama_decode_b64", llama_decode_b64},
	{"minilm_embed", minilm_embed},
};

/* --batch N, --steps N and --bf16; false on anything else */
static bool parse_options(int argc, char **argv)
{
	for (int i = 2; i < argc; i += 2) {
		char *end;
		long v;

		if (!strcmp(argv[i], "--bf16")) {
			opt_bf16 = true;
			i--; /* a flag without a value */
			continue;
		}
		if (i + 1 >= argc)
			return false;
		v = strtol(argv[i + 1], &end, 10);
		if (*end || v < 1 || v > 4096)
			return false;
		if (!strcmp(argv[i], "--batch"))
			opt_batch = (int)v;
		else if (!strcmp(argv[i], "--steps"))
			opt_steps = (int)v;
		else
			return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	char why[512];

	for (size_t i = 0; argc >= 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(argv[1], cases[i].name) || !parse_options(argc, argv))
			continue;
		if (opt_bf16 && cases[i].run == minilm_embed)
			break; /* the embedder has no bf16 precision */
		if (llm_backend_select(0, why, sizeof(why)) != LLM_BACKEND_CUDA) {
			fprintf(stderr, "bench_cuda_model: needs a CUDA device: %s\n", why);
			return 1;
		}
		fprintf(stderr, "%s\n", why);
		device_peak = find_peak();
		base_used = used_bytes();
		struct result r = cases[i].run();

		cuda_kernels_free();
		printf("{\"case\": \"%s\", \"value\": %.3f, \"unit\": \"%s\", "
		       "\"peak_mem_mib\": %.1f, \"%s\": %.4f, \"peak\": \"%s\", "
		       "\"backend\": \"cuda\", \"precision\": \"%s\"}\n",
		       cases[i].name, r.value, r.unit,
		       (double)(max_used > base_used ? max_used - base_used : 0) / 1048576.0,
		       r.ratio_key, r.ratio, device_peak.name, opt_bf16 ? "bf16" : "fp32");
		return 0;
	}
	fprintf(stderr, "usage: bench_cuda_model gpt2_train|llama_decode_b1|llama_decode_b64|"
			"minilm_embed [--batch N] [--steps N] [--bf16 (not minilm_embed)]\n");
	return 2;
}
