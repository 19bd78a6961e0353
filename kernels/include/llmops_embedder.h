/* Sentence embeddings with a BERT encoder on the CPU kernels or, with
 * LLM_EMBEDDER_CUDA, on the CUDA ones.
 *
 * Loads a Hugging Face BertModel checkpoint (config.json + model.safetensors,
 * or a sharded index) together with its sentence-transformers pooling
 * (modules.json, the Pooling module's config.json, an optional Normalize
 * module), and turns batches of token ids into embeddings: the post-LN BERT
 * encoder, then the mean of the last hidden state over each row's valid
 * tokens, then optionally L2 normalisation. Without modules.json the pooling
 * is mean + normalize, as all-MiniLM-L6-v2.
 *
 * Memory: one arena, allocated at load (host memory, or device memory with
 * LLM_EMBEDDER_CUDA), holds the fp32 parameters and the activations for at
 * most max_batch rows of max_len tokens; encoding never allocates. Token ids come from the model's
 * WordPiece tokenizer (not part of this module), [CLS] ... [SEP], already truncated by the caller;
 * every token gets token type 0 (single sentences).
 *
 * Threads: an embedder is used by one thread at a time (the activations live
 * in the arena); the CPU kernels parallelise inside with OpenMP and OpenBLAS,
 * the CUDA ones run on the default stream of the device current on that
 * thread.
 * Errors follow llm_err.h: each failure records a detail (llm_last_error())
 * naming the file and the field or tensor, or the argument at fault. */
#ifndef LLMOPS_EMBEDDER_H
#define LLMOPS_EMBEDDER_H

#include <stdbool.h>
#include <stddef.h>

#include "llm_err.h"

/* A loaded model with its arena (opaque). */
typedef struct llm_embedder llm_embedder;

/* What a loaded model is; filled by llm_embedder_info(). */
struct llm_embedder_info {
	int dim;	    /* hidden size C = embedding size */
	int layers;	    /* encoder layers */
	int heads;	    /* attention heads (head size dim / heads) */
	int ffn;	    /* intermediate (feed-forward) size */
	int vocab;	    /* token ids must be in [0, vocab) */
	int max_positions;  /* max_position_embeddings of config.json */
	int max_seq_length; /* sentence_bert_config.json's max_seq_length, the
			       length the tokenizer should truncate to; 0 when
			       the file is absent */
	int max_batch;	    /* rows per llm_embedder_encode() call, from load */
	int max_len;	    /* tokens per row, from load */
	bool normalize;	    /* embeddings are L2-normalised */
	size_t arena_bytes; /* the one allocation holding everything */
	size_t param_count; /* floats of parameters in the arena */
};

/* Load flag LLM_EMBEDDER_CUDA (the same bit as LLM_MODEL_CUDA): keep the
 * arena on the CUDA device current on the calling thread (pick and
 * initialise it first, e.g. with llm_backend_select()) and run the cuda_*
 * kernels there. The API is the same: ids, lengths and out stay host
 * arrays (copied up and down on each encode). Results agree with the CPU's
 * to rounding, not bit for bit. Without it the embedder runs on the CPU. */
#define LLM_EMBEDDER_CUDA 2u

/* LLM_EMBEDDER_STAGED (the same bit as LLM_MODEL_STAGED): the CPU kernels,
 * but every host access to the arena staged as for a device, so the copies
 * LLM_EMBEDDER_CUDA relies on are tested on machines without a GPU. Results
 * equal the plain CPU embedder's bit for bit. Not with LLM_EMBEDDER_CUDA. */
#define LLM_EMBEDDER_STAGED 8u

/* Loads the model in directory dir for batches of at most max_batch rows of
 * at most max_len tokens (1 <= max_len <= max_position_embeddings), on the
 * backend flags select (0: the CPU; LLM_EMBEDDER_CUDA; LLM_EMBEDDER_STAGED). Reads
 * dir/modules.json when present (a Transformer module with a non-empty path
 * has its config.json and weights in dir/path), else config.json and weights
 * in dir. Weight names may carry a "bert." prefix; pooler.* is ignored.
 * Returns LLM_OK and *out (free with llm_embedder_destroy()), or:
 * LLM_ENOTFOUND for a missing file or tensor, LLM_EPARSE for malformed JSON
 * or safetensors, LLM_ETYPE for a mistyped field, LLM_EINVAL for impossible
 * values or tensor shapes (and bad arguments), LLM_EUNSUPPORTED for a model
 * this code does not implement (another model_type, hidden_act, pooling mode
 * or module), LLM_ETOOLARGE when sizes exceed the limits in
 * docs/internals/embedder.md, LLM_ENOMEM. With LLM_EMBEDDER_CUDA also
 * LLM_EUNSUPPORTED when the program is built without CUDA and LLM_EINTERNAL
 * for a CUDA failure; LLM_EINVAL for unknown flags. Nothing is allocated on
 * failure, and *out is NULL. */
llm_err llm_embedder_load(const char *dir, int max_batch, int max_len, unsigned flags,
			  llm_embedder **out);

/* Frees the embedder and its arena; NULL is a no-op. */
void llm_embedder_destroy(llm_embedder *e);

/* Embeds B rows of token ids. ids (B,T) is row-major and right-padded: row b
 * holds lengths[b] valid ids, the rest of the row is ignored (never read as
 * a token). out (B,dim) receives the pooled embeddings; the results for a row
 * do not depend on the other rows or on T. Needs 1 <= B <= max_batch,
 * 1 <= T <= max_len, 1 <= lengths[b] <= T and valid ids in [0, vocab).
 * Returns LLM_OK, LLM_EINVAL for a NULL pointer, a bad size, length or id
 * (detail names the row and position), LLM_ETOOLARGE when B or T exceed the
 * load-time maximum, LLM_EINTERNAL for a CUDA failure. On a refused input
 * out is untouched. Cost is proportional to B times the longest length,
 * not to T. */
llm_err llm_embedder_encode(llm_embedder *e, const int *ids, const int *lengths, int B, int T,
			    float *out);

/* The last hidden state of the latest successful llm_embedder_encode(), as
 * (B, T_run, dim) with T_run the longest length of that call; row b's
 * positions >= lengths[b] are padding and hold unspecified values. Sets *B and
 * *T_run (0 and NULL result before the first encode or after a failed one).
 * On the CPU the embedder's own buffer; with LLM_EMBEDDER_CUDA a host copy
 * made on each call (NULL when it cannot be made: see llm_last_error()).
 * Borrowed: valid until the next encode, hidden or destroy. */
const float *llm_embedder_hidden(const llm_embedder *e, int *B, int *T_run);

/* The embedding size (hidden size C). */
int llm_embedder_dim(const llm_embedder *e);

/* Fills *info with the model's sizes and settings. */
void llm_embedder_info(const llm_embedder *e, struct llm_embedder_info *info);

#endif
