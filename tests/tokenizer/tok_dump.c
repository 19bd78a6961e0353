/* Encodes documents with a tokenizer and prints, per document, one JSON line
 * {"ids": [...], "decoded": "..."} for the parity test against HF tokenizers.
 *
 *   tok_dump [--special] [--keep-special] TOKENIZER < docs
 *   TOKENIZER: a path for llm_tok_load(), or --bpe VOCAB.json MERGES.txt,
 *              or --wordpiece VOCAB.txt
 * docs: records "<byte count>\n<bytes>". --special adds the post-processor's
 * tokens; decoding skips special tokens unless --keep-special. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_tokenizer.h"

static int die(const char *what, llm_err err)
{
	fprintf(stderr, "tok_dump: %s: %s: %s\n", what, llm_errname(err), llm_last_error());
	return 1;
}

static llm_err load(int argc, char **argv, int i, llm_tok **t)
{
	if (i + 2 < argc && !strcmp(argv[i], "--bpe"))
		return llm_tok_load_bpe_files(argv[i + 1], argv[i + 2], t);
	if (i + 1 < argc && !strcmp(argv[i], "--wordpiece"))
		return llm_tok_load_wordpiece_file(argv[i + 1], true, t);
	if (i < argc)
		return llm_tok_load(argv[i], t);
	return llm_fail(LLM_EINVAL, "no tokenizer given");
}

static int dump(const llm_tok *t, const char *doc, size_t len, bool special, bool keep)
{
	uint32_t *ids;
	size_t n, dlen;
	char *dec, *js;
	llm_err err = llm_tok_encode(t, doc, len, special, &ids, &n);

	if (err)
		return die("encode", err);
	err = llm_tok_decode(t, ids, n, !keep, &dec, &dlen);
	if (err) {
		free(ids);
		return die("decode", err);
	}
	fputs("{\"ids\": [", stdout);
	for (size_t i = 0; i < n; i++)
		printf(i ? ", %u" : "%u", ids[i]);
	json_t *s = json_stringn(dec, dlen);

	js = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	printf("], \"decoded\": %s}\n", js ? js : "null");
	free(js);
	json_decref(s);
	free(dec);
	free(ids);
	return 0;
}

int main(int argc, char **argv)
{
	bool special = false, keep = false;
	int i = 1;
	llm_tok *t;
	llm_err err;
	unsigned long len;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		if (!strcmp(argv[i], "--special"))
			special = true;
		else if (!strcmp(argv[i], "--keep-special"))
			keep = true;
		else
			break;
	}
	if ((err = load(argc, argv, i, &t)))
		return die("load", err);
	while (scanf("%lu", &len) == 1 && getchar() == '\n') {
		char *doc = malloc(len + 1);

		if (!doc || fread(doc, 1, len, stdin) != len) {
			free(doc);
			llm_tok_destroy(t);
			return die("read", llm_fail(LLM_EIO, "short document"));
		}
		int rc = dump(t, doc, len, special, keep);

		free(doc);
		if (rc) {
			llm_tok_destroy(t);
			return rc;
		}
	}
	llm_tok_destroy(t);
	return 0;
}
