/* libFuzzer harness: the input is a tokenizer file. The first byte picks
 * the kind: tokenizer.json (parsed in memory), a BERT vocab.txt, or a GPT-2
 * vocab.json and merges.txt (split at the first NUL byte), each written to
 * a temporary file and loaded; a loaded tokenizer then encodes and decodes a
 * fixed multilingual text. Any crash, leak or sanitizer report is a bug;
 * load errors are expected and must leave a detail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char text[] =
	"Héllo wörld, I'm 42! Съешь 中文 😀👨‍👩‍👧 \t\n  <s> [CLS] x<0x41>";

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		abort();
	if (n && fwrite(p, 1, n, f) != n)
		abort();
	fclose(f);
}

static void exercise(llm_tok *t)
{
	uint32_t *ids;
	size_t n, len;
	char *dec;

	if (llm_tok_encode(t, text, sizeof(text) - 1, true, &ids, &n) == LLM_OK) {
		if (llm_tok_decode(t, ids, n, false, &dec, &len) == LLM_OK)
			free(dec);
		free(ids);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[64], b[64];
	llm_tok *t = NULL;
	llm_err err;

	if (size < 1)
		return 0;
	snprintf(a, sizeof(a), "/tmp/fuzz-tok-%d-a", (int)getpid());
	snprintf(b, sizeof(b), "/tmp/fuzz-tok-%d-b", (int)getpid());
	if (data[0] % 3 == 0) {
		err = llm_tok_load_json((const char *)data + 1, size - 1, "fuzz.json", &t);
	} else if (data[0] % 3 == 1) {
		write_file(a, data + 1, size - 1);
		err = llm_tok_load_wordpiece_file(a, data[0] & 8, &t);
	} else {
		const uint8_t *nul = memchr(data + 1, 0, size - 1);
		size_t n1 = nul ? (size_t)(nul - data - 1) : size - 1;

		write_file(a, data + 1, n1);
		write_file(b, nul ? nul + 1 : data + size, nul ? size - n1 - 2 : 0);
		err = llm_tok_load_bpe_files(a, b, &t);
	}
	if (err != LLM_OK && llm_last_error()[0] == '\0')
		abort(); /* every failure must say why */
	if (t)
		exercise(t);
	llm_tok_destroy(t);
	return 0;
}
