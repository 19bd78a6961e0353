/* libFuzzer harness: encodes arbitrary bytes with real tokenizers and checks
 * what must hold for any input:
 *   - GPT-2 (byte-level BPE) and a byte-only Llama-3-style tokenizer decode
 *     valid UTF-8 back to exactly the input;
 *   - all-MiniLM-L6-v2 (WordPiece) encodes and decodes without error.
 * The assets come from `make deps` (build/assets; FUZZ_ASSETS overrides). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_tokenizer.h"
#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define LLAMA3_PATTERN                                                             \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static llm_tok *gpt2, *minilm, *llama3;

static void need(llm_err err, const char *what)
{
	if (err) {
		fprintf(stderr, "fuzz: %s: %s\n", what, llm_last_error());
		exit(1);
	}
}

/* A Llama-3-style tokenizer.json whose vocabulary is the 256 byte symbols. */
static llm_tok *byte_llama3(void)
{
	json_t *vocab = json_object(), *root;
	char sym[8], *text;
	llm_tok *t;

	for (unsigned b = 0; b < 256; b++) {
		sym[llm_tok_u_put(llm_tok_byte_to_cp((unsigned char)b), sym)] = '\0';
		json_object_set_new(vocab, sym, json_integer(b));
	}
	root = json_pack("{s:{s:s, s:o, s:[]}, s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, "
			 "s:b}]}, s:{s:s}}",
			 "model", "type", "BPE", "vocab", vocab, "merges", "pre_tokenizer", "type",
			 "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
			 LLAMA3_PATTERN, "behavior", "Isolated", "invert", 0, "type", "ByteLevel",
			 "add_prefix_space", 0, "use_regex", 0, "decoder", "type", "ByteLevel");
	text = root ? json_dumps(root, 0) : NULL;
	if (!text) {
		fprintf(stderr, "fuzz: llama3: cannot build the JSON\n");
		exit(1);
	}
	need(llm_tok_load_json(text, strlen(text), "llama3-bytes.json", &t), "llama3");
	free(text);
	json_decref(root);
	return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_ASSETS") ? getenv("FUZZ_ASSETS") : "build/assets";
	char a[512], b[512];

	(void)argc;
	(void)argv;
	snprintf(a, sizeof(a), "%s/gpt2/encoder.json", dir);
	snprintf(b, sizeof(b), "%s/gpt2/vocab.bpe", dir);
	need(llm_tok_load_bpe_files(a, b, &gpt2), "gpt2");
	snprintf(a, sizeof(a), "%s/all-MiniLM-L6-v2", dir);
	need(llm_tok_load(a, &minilm), "minilm");
	llama3 = byte_llama3();
	return 0;
}

static void round_trip(const llm_tok *t, const uint8_t *data, size_t size, bool exact)
{
	uint32_t *ids;
	size_t n, len;
	char *dec;

	if (llm_tok_encode(t, (const char *)data, size, true, &ids, &n))
		abort();
	if (llm_tok_decode(t, ids, n, true, &dec, &len))
		abort();
	if (exact && (len != size || memcmp(dec, data, size) != 0))
		abort(); /* byte-level BPE must give the text back */
	free(dec);
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool valid = llm_tok_u_valid((const char *)data, size);

	round_trip(gpt2, data, size, valid);
	round_trip(llama3, data, size, valid);
	round_trip(minilm, data, size, false);
	return 0;
}
