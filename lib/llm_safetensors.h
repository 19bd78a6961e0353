/* safetensors files: memory-mapped reading with full validation, atomic
 * writing, F16/BF16 conversion, and sharded checkpoints (an index JSON whose
 * weight_map names the shard holding each tensor).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {k: v}}
 * then the data buffer; offsets are relative to the buffer, tensors are
 * contiguous with no holes or overlaps and cover the buffer exactly.
 * Every malformed input is LLM_EPARSE with a detail naming the file and the
 * tensor (llm_last_error()). Limit: the file is mapped, so a file truncated
 * by another process while open can still fault; headers are capped at
 * 100 MiB. */
#ifndef LLM_SAFETENSORS_H
#define LLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"

#define LLM_ST_MAX_DIMS	       8
#define LLM_ST_MAX_HEADER      ((size_t)100 << 20)
#define LLM_ST_INDEX_FILENAME  "model.safetensors.index.json"
#define LLM_ST_SINGLE_FILENAME "model.safetensors"

/* Element types, named as in the header ("F32", "BF16", ...). Only F32, F16
 * and BF16 convert to float; the others are recognised and readable raw. */
enum llm_st_dtype {
	LLM_ST_F64,
	LLM_ST_F32,
	LLM_ST_F16,
	LLM_ST_BF16,
	LLM_ST_I64,
	LLM_ST_I32,
	LLM_ST_I16,
	LLM_ST_I8,
	LLM_ST_U64,
	LLM_ST_U32,
	LLM_ST_U16,
	LLM_ST_U8,
	LLM_ST_BOOL,
	LLM_ST_DTYPE_COUNT_ /* number of dtypes; not a dtype */
};

/* Bytes per element of dtype; 0 for a value out of range. */
size_t llm_st_dtype_size(enum llm_st_dtype dtype);

/* Header name of dtype ("BF16"); "?" for a value out of range. */
const char *llm_st_dtype_name(enum llm_st_dtype dtype);

/* One tensor of an open file; every pointer borrows from the file and lives
 * until llm_st_close(). data points into the mapping and may be unaligned
 * (use llm_st_read_f32() or memcpy). nbytes = product(shape) * dtype size. */
struct llm_st_tensor {
	const char *name;
	enum llm_st_dtype dtype;
	int ndim;
	int64_t shape[LLM_ST_MAX_DIMS];
	size_t nbytes;
	const void *data;
};

/* An open, validated, read-only mapped file (opaque). */
typedef struct llm_st_file llm_st_file;

/* Opens and maps path read-only and validates the whole header and the
 * layout of the data. LLM_ENOTFOUND when path does not exist, LLM_EIO for
 * other I/O failures, LLM_EPARSE for any malformed content, LLM_ENOMEM.
 * On success the caller closes *out with llm_st_close(). */
llm_err llm_st_open(const char *path, llm_st_file **out);

/* Unmaps and frees f; NULL is a no-op. */
void llm_st_close(llm_st_file *f);

/* Number of tensors in f. */
size_t llm_st_count(const llm_st_file *f);

/* The tensor called name, or NULL when f has none. */
const struct llm_st_tensor *llm_st_get(const llm_st_file *f, const char *name);

/* The i-th tensor in file order (ascending data offset), or NULL when i is
 * out of range. */
const struct llm_st_tensor *llm_st_at(const llm_st_file *f, size_t i);

/* The __metadata__ value for key, or NULL when absent. */
const char *llm_st_metadata(const llm_st_file *f, const char *key);

/* Number of elements of t (1 for a 0-dimensional tensor). */
size_t llm_st_numel(const struct llm_st_tensor *t);

/* Converts t (F32, F16 or BF16) to n floats in out. n must equal the element
 * count (LLM_EINVAL otherwise); other dtypes give LLM_EUNSUPPORTED. F16 and
 * BF16 convert exactly, including subnormals, infinities and NaN payloads. */
llm_err llm_st_read_f32(const struct llm_st_tensor *t, float *out, size_t n);

/* Round-to-nearest-even conversions of n floats to BF16 / F16 bit patterns.
 * NaN stays NaN (quietened, sign kept); overflow gives infinity. LLM_EINVAL
 * when a pointer is NULL and n > 0. */
llm_err llm_st_f32_to_bf16(const float *in, uint16_t *out, size_t n);
llm_err llm_st_f32_to_f16(const float *in, uint16_t *out, size_t n);

/* One tensor to write: data holds product(shape) elements of dtype, packed
 * in row-major order. shape has ndim entries (0 <= ndim <= 8). */
struct llm_st_out {
	const char *name;
	enum llm_st_dtype dtype;
	int ndim;
	const int64_t *shape;
	const void *data;
};

/* Writes n tensors to path, in the order given, with metadata_kv (NULL, or a
 * NULL-terminated list "key", "value", ...) as __metadata__ (first in the
 * header, keys in order; omitted when empty). The header is compact JSON
 * padded with spaces to a multiple of 8 bytes, as the Python library writes
 * it: given tensors in the order it sorts them (its dtype order descending,
 * e.g. F64, F32, BF16, F16, then name) and at most one metadata key (it
 * writes metadata from a hash map), the bytes are identical. Writes "path.tmp", fsyncs, then
 * renames, so a crash never leaves a partial file at path. LLM_EINVAL for a bad tensor (unknown
 * dtype, bad shape, duplicate or reserved name), LLM_ETOOLARGE for sizes that overflow or a header
 * over the cap, LLM_EIO, LLM_ENOMEM. */
llm_err llm_st_write(const char *path, const struct llm_st_out *tensors, size_t n,
		     const char *const *metadata_kv);

/* A sharded checkpoint: the tensors of one or more open files (opaque). */
typedef struct llm_st_set llm_st_set;

/* Opens dir/model.safetensors.index.json, whose "weight_map" maps tensor
 * names to shard files in dir (each opened once), or else the single file
 * dir/model.safetensors. A missing shard fails with its open error and a
 * tensor absent from its shard with LLM_EPARSE, each naming the index, the
 * tensor and the shard; neither file present is LLM_ENOTFOUND. The caller
 * closes *out with llm_st_set_close(). */
llm_err llm_st_open_index(const char *dir, llm_st_set **out);

/* The tensor called name (borrowed from its shard), or NULL. */
const struct llm_st_tensor *llm_st_set_get(const llm_st_set *set, const char *name);

/* Number of tensors in set (the weight_map's size, or the single file's). */
size_t llm_st_set_count(const llm_st_set *set);

/* Closes every shard and frees set; NULL is a no-op. */
void llm_st_set_close(llm_st_set *set);

#endif
