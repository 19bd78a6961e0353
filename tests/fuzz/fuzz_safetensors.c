/* libFuzzer harness for the safetensors reader: every input is written to an
 * in-memory file and opened with llm_st_open(), which must either reject it
 * with an error or return a file whose every tensor can be read. Build and
 * run with `make fuzz-safetensors` (scripts/fuzz.sh). */
#include "llm_safetensors.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every tensor that converts to float, as a model loader would. */
static void read_all(llm_st_file *f)
{
	for (size_t i = 0; i < llm_st_count(f); i++) {
		const struct llm_st_tensor *t = llm_st_at(f, i);
		size_t n = llm_st_numel(t);
		float *buf;

		if (n > (1u << 20))
			continue;
		buf = malloc((n ? n : 1) * sizeof(float));
		if (!buf)
			continue;
		(void)llm_st_read_f32(t, buf, n);
		free(buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	llm_st_file *f;
	int fd = memfd_create("fuzz.safetensors", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (llm_st_open(path, &f) == LLM_OK) {
			read_all(f);
			llm_st_close(f);
		}
	}
	close(fd);
	return 0;
}
