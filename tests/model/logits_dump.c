/* Runs a model directory (and optionally a PEFT adapter on it) over one row
 * of token ids and prints the logits as one JSON object
 * {"logits": [[V floats] per position]}, for the end-to-end tests that
 * compare what a fine-tuning run wrote with what transformers and peft
 * computed from it (tests/golden/finetune/).
 *
 *   logits_dump MODEL_DIR [--adapter ADAPTER_DIR] ID...
 *
 * The forward is llm_model_prefill(): inference, no dropout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmops_model.h"

static int die(const char *what, llm_err err)
{
	fprintf(stderr, "logits_dump: %s: %s: %s\n", what, llm_errname(err), llm_last_error());
	return 1;
}

static int usage(void)
{
	fputs("usage: logits_dump MODEL_DIR [--adapter ADAPTER_DIR] ID...\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *adapter = NULL;
	int first = 2, T, *ids, rc = 0;
	llm_model *m;
	llm_err err;

	if (argc > 3 && !strcmp(argv[2], "--adapter")) {
		adapter = argv[3];
		first = 4;
	}
	T = argc - first;
	if (argc < 2 || T < 1)
		return usage();
	ids = calloc((size_t)T, sizeof(*ids));
	if (!ids)
		return die("ids", LLM_ENOMEM);
	for (int t = 0; t < T; t++) {
		char *end;
		long v;

		errno = 0;
		v = strtol(argv[first + t], &end, 10);
		if (errno || *end || v < 0 || v > 0x7fffffff) {
			fprintf(stderr,
				"logits_dump: token id %d: %s is not a non-negative integer\n", t,
				argv[first + t]);
			free(ids);
			return 2;
		}
		ids[t] = (int)v;
	}
	if ((err = llm_model_load(argv[1], 1, T, LLM_MODEL_INFERENCE, &m))) {
		free(ids);
		return die(argv[1], err);
	}
	if (adapter && (err = llm_model_lora_load(m, adapter)))
		rc = die(adapter, err);
	else if ((err = llm_model_prefill(m, ids, 1, T)))
		rc = die("prefill", err);
	if (!rc) {
		const float *logits = llm_model_logits(m);
		int V = llm_model_get_config(m)->vocab_size;

		fputs("{\"logits\": [", stdout);
		for (int t = 0; t < T; t++) {
			for (int v = 0; v < V; v++)
				printf("%s%.9g", v ? ", " : (t ? "], [" : "["),
				       logits[(size_t)t * V + v]);
		}
		puts("]]}");
	}
	llm_model_destroy(m);
	free(ids);
	return rc;
}
