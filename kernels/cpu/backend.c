/* Backend selection shared by every program: CUDA when it is linked in and
 * a usable device initialises, otherwise the CPU kernels.
 *
 * cuda_device_init() is defined here as a weak symbol that always answers
 * LLM_EUNSUPPORTED ("built without CUDA"); kernels/cuda/device.cu defines the
 * real one, which replaces this stub when a program links the CUDA objects.
 * So a binary built without nvcc, one run on a machine without a GPU or
 * driver, and one whose CUDA initialisation fails all fall back to the CPU
 * and say why. The last choice is remembered for llm_backend_current().
 * Design limit: the choice is per process and made once by the caller;
 * nothing here switches backends later. */
#include <stdatomic.h>
#include <stdio.h>

#include "llmops_kernels.h"

static atomic_int current = LLM_BACKEND_CPU; /* the last choice of llm_backend_select() */

__attribute__((weak)) llm_err cuda_device_init(int device, char *desc, size_t desclen)
{
	(void)device;
	if (desc && desclen > 0)
		desc[0] = '\0';
	return llm_fail(LLM_EUNSUPPORTED, "built without CUDA");
}

enum llm_backend llm_backend_select(int device, char *why, size_t whylen)
{
	char desc[256] = "";
	llm_err err = cuda_device_init(device, desc, sizeof(desc));

	if (err == LLM_OK) {
		if (why && whylen > 0)
			snprintf(why, whylen, "backend: cuda (device %d: %s)", device, desc);
		atomic_store(&current, LLM_BACKEND_CUDA);
		return LLM_BACKEND_CUDA;
	}
	if (why && whylen > 0)
		snprintf(why, whylen, "backend: cpu (%s: %s)", llm_errname(err), llm_last_error());
	atomic_store(&current, LLM_BACKEND_CPU);
	return LLM_BACKEND_CPU;
}

enum llm_backend llm_backend_current(void)
{
	return atomic_load(&current) == LLM_BACKEND_CUDA ? LLM_BACKEND_CUDA : LLM_BACKEND_CPU;
}
