/* CUDA device selection: cuda_device_init() binds a device to the calling
 * thread; the backend probe llm_backend_select() (kernels/cpu/backend.c)
 * calls it to decide between the CUDA and the CPU kernels.
 *
 * This file is compiled only when nvcc exists, and linked only into programs
 * built with CUDA. kernels/cpu/backend.c carries a weak stub of
 * cuda_device_init() that reports "built without CUDA", so the same program
 * code links either way; the strong definition here wins when this object is
 * linked in. Design limit: the kernels carry sm_90 SASS and compute_90 PTX,
 * so devices older than sm_90 are refused (LLM_EUNSUPPORTED) rather than
 * failing at the first launch. */
#include <cuda_runtime.h>

#include <stdio.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

#define MIN_SM_MAJOR 9

llm_err cuda_device_init(int device, char *desc, size_t desclen)
{
	const char *fn = "cuda_device_init";
	struct cudaDeviceProp prop;
	int ndev = 0;
	cudaError_t err = cudaGetDeviceCount(&ndev);

	if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
	    (err == cudaSuccess && ndev == 0))
		return llm_fail(LLM_ENOTFOUND, "%s: no CUDA device: %s", fn,
				err == cudaSuccess ? "device count is 0" : cudaGetErrorString(err));
	if (err != cudaSuccess)
		return cuda_fail(fn, "cudaGetDeviceCount", err);
	if (device < 0 || device >= ndev)
		return llm_fail(LLM_ENOTFOUND, "%s: device %d of %d", fn, device, ndev);
	if ((err = cudaGetDeviceProperties(&prop, device)) != cudaSuccess)
		return cuda_fail(fn, "cudaGetDeviceProperties", err);
	if (prop.major < MIN_SM_MAJOR)
		return llm_fail(LLM_EUNSUPPORTED, "%s: %s is sm_%d%d, kernels need sm_%d0 or newer",
				fn, prop.name, prop.major, prop.minor, MIN_SM_MAJOR);
	if ((err = cudaSetDevice(device)) != cudaSuccess)
		return cuda_fail(fn, "cudaSetDevice", err);
	if ((err = cudaFree(NULL)) != cudaSuccess) /* creates the context now */
		return cuda_fail(fn, "creating the context", err);
	if (desc && desclen > 0)
		snprintf(desc, desclen, "%s, sm_%d%d, %.1f GiB", prop.name, prop.major, prop.minor,
			 prop.totalGlobalMem / 1073741824.0);
	return LLM_OK;
}
