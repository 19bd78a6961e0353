/* The golden model tests of tests/unit/test_model_{gpt2,llama}.c repeated
 * with the models on the CUDA backend (LLM_MODEL_CUDA): logits and loss,
 * every gradient, 10 AdamW step losses, 10 LoRA step losses and the final
 * adapter, greedy decoding, and KV-cached against recomputed logits, for
 * tests/golden/models/{gpt2,llama,llama_tied} against the transformers/peft
 * references; and the BERT embedder's of tests/unit/test_embedder.c on
 * LLM_EMBEDDER_CUDA: the tiny BertModel against transformers,
 * all-MiniLM-L6-v2 (build/assets, from `make deps`) against
 * sentence-transformers, and a batch against one sentence at a time. The
 * checks themselves are tests/unit/model_golden.h and embedder_golden.h,
 * shared with the CPU tests; here they report through the CUDA harness (one
 * PASS/FAIL line per check; a failed assertion ends that check only).
 *
 * Tolerances (|got - ref| <= atol + rtol * |ref|), ten times the CPU's:
 *   logits           atol 1e-4, rtol 1e-4 (KV-cached vs recomputed: same)
 *   loss             1e-4 absolute
 *   every gradient   atol 1e-5, rtol 1e-3
 *   training losses  1e-3 absolute, each of the 10 AdamW and 10 LoRA steps
 *   final LoRA A, B  atol 1e-3, rtol 1e-2
 *   greedy tokens    exact
 *   BERT tiny hidden state and embeddings  atol 1e-4, rtol 1e-4
 *   MiniLM embeddings   cosine >= 0.999 (1 - cosine ten times the CPU's)
 *   MiniLM batch of 32 against one at a time  1e-5 absolute
 * Why looser: nothing on this path is bf16 or TF32 (cuBLASLt GEMMs in plain
 * fp32, fp32 kernels), so the error per operation is the CPU's, but every
 * reduction (GEMM K-splits, the flash-attention tiles, norms, the
 * cross-entropy row sums) runs in another order than the CPU kernels and
 * torch, and AdamW amplifies those last-bit differences over ten steps
 * (its update divides by sqrt(v), so small gradients move as much as large
 * ones); a batch and a single row take different cuBLAS shapes. A factor of ten over the CPU bounds
 * keeps every check meaningful: a wrong kernel argument or a missing accumulation is off by 1e-2 or
 * more. Greedy tokens stay exact: the golden prompts have no near-ties at the top.
 *
 * Then GPT-2 again with LLM_MODEL_BF16 (bf16 matmuls): logits, loss and the
 * ten AdamW step losses at the bf16 tolerances derived at golden_tol_bf16.
 *
 * Needs an NVIDIA GPU (sm_90) and runs from the repository root (the golden
 * files are read by relative path). LLMOPS_CUDA_QUICK=1 (the sanitizer
 * runs of make test-cuda) leaves out the training and KV-cache checks and
 * the MiniLM ones (the tiny BERT reaches every kernel the embedder uses). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"

extern "C" {
#include "llm_err.h"
#include "llm_safetensors.h"
#include "llmops_embedder.h"
#include "llmops_model.h"
}

/* ---- cmocka's assertions as model_golden.h uses them ---- */

static jmp_buf check_jmp;

/* Reports the failed assertion and leaves the running check. */
static void check_failed(const char *file, int line, const char *expr, const char *detail)
{
	report(false, "%s:%d: %s %s", file, line, expr, detail);
	longjmp(check_jmp, 1);
}

#define assert_true(x)                                            \
	do {                                                      \
		if (!(x))                                         \
			check_failed(__FILE__, __LINE__, #x, ""); \
	} while (0)

#define assert_non_null(p) assert_true((p) != NULL)

#define assert_int_equal(a, b)                                                                 \
	do {                                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);                            \
		char why_[320];                                                                \
		if (a_ != b_) {                                                                \
			snprintf(why_, sizeof(why_), "(%lld != %lld; last error: %s)", a_, b_, \
				 llm_last_error());                                            \
			check_failed(__FILE__, __LINE__, #a " == " #b, why_);                  \
		}                                                                              \
	} while (0)

#include "../unit/embedder_golden.h"
#include "../unit/model_golden.h"

static const struct golden_tol golden_tol_cuda = {
	1e-4, 1e-4, /* logits */
	1e-4,	    /* loss */
	1e-5, 1e-3, /* gradients */
	1e-3,	    /* each training loss */
	1e-3, 1e-2, /* final LoRA adapter */
};

/* GPT-2 with LLM_MODEL_BF16 (bf16 products in every matmul, fp32 elsewhere).
 * Each matmul output is off by about u * sqrt(2/3) ~ 3e-3 of its rms (bf16
 * unit roundoff u = 2^-8, see tests/cuda/test_cuda_kernels.cu mm_atol()),
 * whatever K is; the golden GPT-2 chains about ten of them (2 layers of
 * four, the LM head) with layer norms in between, so logits (rms ~2 with
 * its 0.2 initializer range) move by ~1e-2: atol 5e-2 + rtol 2e-2 allows
 * that with margin and is still far below what a wrong operand does (the
 * logits' own size). The loss averages those errors: 3e-2. Training: ten
 * AdamW steps at lr 5e-3 from loss 6.8 down to 0.016; sign-normalised
 * updates keep bf16 and fp32 trajectories close, 0.1 per step, while a
 * broken backward stays at losses off by 1 or more. Gradients (many near
 * 0, relative errors of bf16 size), greedy tokens (near-ties may flip) and
 * LoRA are left to the fp32 checks above. Unused fields: 0. */
static const struct golden_tol golden_tol_bf16 = {
	5e-2, 2e-2, /* logits */
	3e-2,	    /* loss */
	0.0,  0.0,  /* gradients: not checked */
	1e-1,	    /* each training loss */
	0.0,  0.0,  /* LoRA: not checked */
};

static const struct emb_golden_tol emb_golden_tol_cuda = {
	1e-4, 1e-4, /* tiny hidden state and embeddings */
	0.999,	    /* each MiniLM sentence's cosine */
	1e-5,	    /* MiniLM batch against one at a time */
};

static char tmpdir[64];

/* Runs one check of arch; PASS unless an assertion inside failed. */
static void run_check(const char *what, void (*check)(const char *), const char *arch)
{
	if (setjmp(check_jmp) == 0) {
		check(arch);
		report(true, "%s: %s on cuda", arch, what);
	}
}

/* Runs one embedder check; PASS unless an assertion inside failed. */
static void run_embedder_check(const char *what, void (*check)(void))
{
	if (setjmp(check_jmp) == 0) {
		check();
		report(true, "bert: %s on cuda", what);
	}
}

static void lora_training(const char *arch)
{
	check_lora_training(arch, tmpdir);
}

/* Quick mode (under compute-sanitizer) keeps one forward, one backward
 * and one generation per model, which reach every kernel the models use
 * but AdamW and LoRA (their kernels are sanitised by test_cuda_kernels). */
static void run_arch(const char *arch, bool trains)
{
	run_check("logits and loss match transformers", check_logits_and_loss, arch);
	run_check("gradients match torch", check_gradients, arch);
	if (trains && !quick()) {
		run_check("10 AdamW step losses match torch", check_full_training, arch);
		run_check("10 LoRA step losses and adapter match peft", lora_training, arch);
	}
	run_check("greedy tokens match", check_greedy, arch);
	if (!quick())
		run_check("KV-cached logits match recomputed", check_kv_cache, arch);
}

int main(void)
{
	char why[512], cmd[128];
	enum llm_backend b = llm_backend_select(0, why, sizeof(why));

	printf("%s\n", why);
	if (b != LLM_BACKEND_CUDA) {
		report(false, "no usable CUDA device for the model tests");
		printf("%d passed, %d failed\n", npassed, nfailed);
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/llmops-cuda-models.XXXXXX");
	if (!mkdtemp(tmpdir))
		die(__FILE__, __LINE__, "mkdtemp", strerror(errno));
	golden_flags = LLM_MODEL_CUDA;
	golden_tol = &golden_tol_cuda;
	run_arch("gpt2", true);
	run_arch("llama", true);
	run_arch("llama_tied", false);
	golden_flags = LLM_MODEL_CUDA | LLM_MODEL_BF16;
	golden_tol = &golden_tol_bf16;
	run_check("bf16 matmuls: logits and loss within bf16 tolerances", check_logits_and_loss,
		  "gpt2");
	if (!quick())
		run_check("bf16 matmuls: 10 AdamW step losses within bf16 tolerances",
			  check_full_training, "gpt2");
	emb_golden_flags = LLM_EMBEDDER_CUDA;
	emb_golden_tol = &emb_golden_tol_cuda;
	run_embedder_check("tiny BertModel hidden state and embeddings match transformers",
			   check_embedder_tiny);
	if (!quick()) {
		run_embedder_check("all-MiniLM-L6-v2 embeddings match sentence-transformers",
				   check_embedder_minilm);
		run_embedder_check("a batch of 32 equals one sentence at a time",
				   check_embedder_minilm_batch);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	cuda_kernels_free();
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed ? 1 : 0;
}
