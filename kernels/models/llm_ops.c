/* The CPU backend tables of llm_ops.h, the weak stand-in for the CUDA one,
 * and the host staging helpers every backend shares.
 *
 * The CPU entries are the cpu_* kernels themselves; memory is calloc'd host
 * memory, so llm_ops_cpu's host views alias it and the staging buffer is
 * never used. llm_ops_cpu_staged is the same table claiming device memory.
 * llm_ops_cuda() and llm_ops_cuda_bf16() here are weak and answer "built
 * without CUDA";
 * kernels/cuda/model_ops.cu defines the real one, which replaces it when a
 * program links the CUDA objects (as kernels/cpu/backend.c does for
 * cuda_device_init()). */
#include "llm_ops.h"
#include "llmops_model.h"

#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);

	if (!p)
		llm_fail(LLM_ENOMEM, "cpu: out of memory for %zu bytes", bytes);
	return p;
}

static void cpu_zero(void *p, size_t bytes)
{
	memset(p, 0, bytes);
}

static void cpu_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
		       size_t rows)
{
	for (size_t i = 0; i < rows; i++)
		memcpy((char *)dst + i * dpitch, (const char *)src + i * spitch, width);
}

static llm_err cpu_copy(void *dst, const void *src, size_t bytes)
{
	if (dst != src)
		memcpy(dst, src, bytes);
	return LLM_OK;
}

static llm_err cpu_sync(void)
{
	return LLM_OK;
}

/* Both CPU tables: the cpu_* kernels over calloc'd host memory. */
/* clang-format off */
#define CPU_OPS \
	.alloc = cpu_alloc, \
	.free = free, \
	.zero = cpu_zero, \
	.copy2d = cpu_copy2d, \
	.upload = cpu_copy, \
	.download = cpu_copy, \
	.sync = cpu_sync, \
	.matmul_forward = cpu_matmul_forward, \
	.matmul_backward = cpu_matmul_backward, \
	.residual_forward = cpu_residual_forward, \
	.embedding_forward = cpu_embedding_forward, \
	.embedding_backward = cpu_embedding_backward, \
	.layernorm_forward = cpu_layernorm_forward, \
	.layernorm_backward = cpu_layernorm_backward, \
	.rmsnorm_forward = cpu_rmsnorm_forward, \
	.rmsnorm_backward = cpu_rmsnorm_backward, \
	.rope_forward = cpu_rope_forward, \
	.rope_backward = cpu_rope_backward, \
	.attention_forward = cpu_attention_forward, \
	.attention_backward = cpu_attention_backward, \
	.gelu_forward = cpu_gelu_forward, \
	.gelu_backward = cpu_gelu_backward, \
	.swiglu_forward = cpu_swiglu_forward, \
	.swiglu_backward = cpu_swiglu_backward, \
	.crossentropy_forward_backward = cpu_crossentropy_forward_backward, \
	.adamw_update = cpu_adamw_update, \
	.clip_grad_norm = cpu_clip_grad_norm, \
	.lora_forward = cpu_lora_forward, \
	.lora_backward = cpu_lora_backward, \
	.sample_forward = cpu_sample_forward, \
	.grad_accumulate = cpu_grad_accumulate, \
	.residual_layernorm_forward = cpu_residual_layernorm_forward, \
	.residual_rmsnorm_forward = cpu_residual_rmsnorm_forward, \
	.mean_pool_forward = cpu_mean_pool_forward
/* clang-format on */

const struct llm_ops llm_ops_cpu = {.name = "cpu", .host_memory = true, CPU_OPS};

/* Every host access staged, as for a device (LLM_MODEL_STAGED). */
const struct llm_ops llm_ops_cpu_staged = {.name = "cpu-staged", .host_memory = false, CPU_OPS};

__attribute__((weak)) const struct llm_ops *llm_ops_cuda(void)
{
	llm_fail(LLM_EUNSUPPORTED, "model: built without CUDA");
	return NULL;
}

__attribute__((weak)) const struct llm_ops *llm_ops_cuda_bf16(void)
{
	llm_fail(LLM_EUNSUPPORTED, "model: built without CUDA");
	return NULL;
}

llm_err llm_ops_for_flags(unsigned flags, const char *src, const struct llm_ops **out)
{
	bool cuda = flags & LLM_MODEL_CUDA, bf16 = flags & LLM_MODEL_BF16;

	*out = NULL;
	if (flags &
	    ~(unsigned)(LLM_MODEL_INFERENCE | LLM_MODEL_CUDA | LLM_MODEL_BF16 | LLM_MODEL_STAGED))
		return llm_fail(LLM_EINVAL, "%s: unknown flags 0x%x", src, flags);
	if (cuda && (flags & LLM_MODEL_STAGED))
		return llm_fail(LLM_EINVAL, "%s: LLM_MODEL_STAGED is the CPU's; not with CUDA",
				src);
	if (bf16 && !cuda)
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: LLM_MODEL_BF16 needs LLM_MODEL_CUDA (bf16 matmuls run only on "
				"the CUDA backend; the CPU kernels are fp32)",
				src);
	if (!cuda)
		*out = flags & LLM_MODEL_STAGED ? &llm_ops_cpu_staged : &llm_ops_cpu;
	else
		*out = bf16 ? llm_ops_cuda_bf16() : llm_ops_cuda();
	return *out ? LLM_OK : llm_wrap(LLM_EUNSUPPORTED, "%s", src);
}

/* ---- host staging ---- */

void llm_stage_free(struct llm_stage *st)
{
	free(st->p);
	st->p = NULL;
	st->cap = 0;
}

/* st's buffer with room for bytes, or NULL */
static void *stage_reserve(struct llm_stage *st, size_t bytes)
{
	void *p;

	if (bytes <= st->cap && st->p)
		return st->p;
	p = malloc(bytes ? bytes : 1);
	if (!p) {
		llm_fail(LLM_ENOMEM, "model: out of memory for a %zu-byte host copy", bytes);
		return NULL;
	}
	free(st->p);
	st->p = p;
	st->cap = bytes;
	return p;
}

llm_err llm_ops_host_view(const struct llm_ops *ops, struct llm_stage *st, const void *src,
			  size_t bytes, const void **out)
{
	void *p;

	*out = src;
	if (ops->host_memory)
		return LLM_OK;
	p = stage_reserve(st, bytes);
	*out = p;
	if (!p)
		return LLM_ENOMEM;
	return ops->download(p, src, bytes);
}

llm_err llm_ops_host_buffer(const struct llm_ops *ops, struct llm_stage *st, void *dst,
			    size_t bytes, void **out)
{
	*out = ops->host_memory ? dst : stage_reserve(st, bytes);
	return *out ? LLM_OK : LLM_ENOMEM;
}

llm_err llm_ops_host_commit(const struct llm_ops *ops, void *dst, const void *host, size_t bytes)
{
	if (dst == host)
		return LLM_OK;
	return ops->upload(dst, host, bytes);
}
