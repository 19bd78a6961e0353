/* safetensors reading, writing and sharded sets (see llm_safetensors.h).
 * The header JSON is kept alive for the life of an open file, so tensor
 * names and metadata values borrow from it; tensors are stored sorted by
 * data offset (file order) with a second index sorted by name for lookup. */
#include "llm_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_json.h"

struct llm_st_file {
	char *path;
	void *map;
	size_t map_len;
	const unsigned char *data; /* start of the data buffer */
	size_t data_len;
	json_t *header; /* owns names and metadata strings */
	json_t *metadata;
	size_t n;
	struct llm_st_tensor *tensors; /* sorted by data offset */
	const struct llm_st_tensor **by_name;
	size_t *begin; /* data offset of tensors[i], parallel array */
};

struct set_entry {
	const char *name;
	const struct llm_st_tensor *t;
};

struct llm_st_set {
	json_t *index;
	size_t nfiles;
	llm_st_file **files;
	const char **file_names;
	size_t n;
	struct set_entry *entries; /* sorted by name */
};

static const struct {
	const char *name;
	size_t size;
} dtypes[LLM_ST_DTYPE_COUNT_] = {
	[LLM_ST_F64] = {"F64", 8},   [LLM_ST_F32] = {"F32", 4}, [LLM_ST_F16] = {"F16", 2},
	[LLM_ST_BF16] = {"BF16", 2}, [LLM_ST_I64] = {"I64", 8}, [LLM_ST_I32] = {"I32", 4},
	[LLM_ST_I16] = {"I16", 2},   [LLM_ST_I8] = {"I8", 1},	[LLM_ST_U64] = {"U64", 8},
	[LLM_ST_U32] = {"U32", 4},   [LLM_ST_U16] = {"U16", 2}, [LLM_ST_U8] = {"U8", 1},
	[LLM_ST_BOOL] = {"BOOL", 1},
};

size_t llm_st_dtype_size(enum llm_st_dtype dtype)
{
	return (unsigned)dtype < LLM_ST_DTYPE_COUNT_ ? dtypes[dtype].size : 0;
}

const char *llm_st_dtype_name(enum llm_st_dtype dtype)
{
	return (unsigned)dtype < LLM_ST_DTYPE_COUNT_ ? dtypes[dtype].name : "?";
}

static int dtype_from_name(const char *s)
{
	for (int i = 0; i < LLM_ST_DTYPE_COUNT_; i++)
		if (strcmp(dtypes[i].name, s) == 0)
			return i;
	return -1;
}

/* ---- errors ---- */

/* LLM_EPARSE with "path: tensor \"name\": what". */
__attribute__((format(printf, 3, 4))) static llm_err bad_tensor(const char *path, const char *name,
								const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return llm_fail(LLM_EPARSE, "%s: tensor \"%s\": %s", path, name, what);
}

/* ---- reading ---- */

static llm_err map_file(const char *path, llm_st_file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return llm_fail(LLM_EIO, "%s: not a readable regular file", path);
	}
	if (st.st_size < 8) {
		close(fd);
		return llm_fail(LLM_EPARSE,
				"%s: file is %lld bytes, shorter than the 8-byte header", path,
				(long long)st.st_size);
	}
	f->map_len = (size_t)st.st_size;
	f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		return llm_fail(LLM_EIO, "%s: mmap: %s", path, strerror(errno));
	}
	return LLM_OK;
}

static uint64_t read_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Parses the header JSON located after the 8-byte length. */
static llm_err parse_header(const char *path, llm_st_file *f)
{
	uint64_t hlen = read_le64(f->map);
	llm_err err;

	if (hlen > LLM_ST_MAX_HEADER)
		return llm_fail(LLM_EPARSE, "%s: header length %llu is over the cap of %zu bytes",
				path, (unsigned long long)hlen, LLM_ST_MAX_HEADER);
	if (hlen > f->map_len - 8)
		return llm_fail(LLM_EPARSE,
				"%s: header length %llu is past the end of the file (%zu bytes)",
				path, (unsigned long long)hlen, f->map_len);
	f->data = (const unsigned char *)f->map + 8 + hlen;
	f->data_len = f->map_len - 8 - (size_t)hlen;
	err = llm_json_parse((const char *)f->map + 8, (size_t)hlen, (size_t)hlen, path,
			     &f->header);
	if (err)
		return err;
	if (!json_is_object(f->header))
		return llm_fail(LLM_EPARSE, "%s: header is not a JSON object", path);
	return LLM_OK;
}

static llm_err check_metadata(const char *path, json_t *meta)
{
	const char *key;
	json_t *v;

	if (!json_is_object(meta))
		return llm_fail(LLM_EPARSE, "%s: __metadata__ is not an object", path);
	json_object_foreach(meta, key, v)
	{
		if (!json_is_string(v))
			return llm_fail(LLM_EPARSE,
					"%s: __metadata__ value for \"%s\" is not a string", path,
					key);
	}
	return LLM_OK;
}

/* Fills t->ndim, t->shape and t->nbytes from the shape array. */
static llm_err parse_shape(const char *path, struct llm_st_tensor *t, json_t *shape)
{
	size_t count = 1, i;
	json_t *d;

	if (!json_is_array(shape))
		return bad_tensor(path, t->name, "shape is not an array");
	if (json_array_size(shape) > LLM_ST_MAX_DIMS)
		return bad_tensor(path, t->name, "shape has %zu dimensions, more than %d",
				  json_array_size(shape), LLM_ST_MAX_DIMS);
	t->ndim = (int)json_array_size(shape);
	json_array_foreach(shape, i, d)
	{
		if (!json_is_integer(d) || json_integer_value(d) < 0)
			return bad_tensor(path, t->name, "shape[%zu] is not a non-negative integer",
					  i);
		t->shape[i] = json_integer_value(d);
		if ((uint64_t)t->shape[i] > SIZE_MAX ||
		    __builtin_mul_overflow(count, (size_t)t->shape[i], &count))
			return bad_tensor(path, t->name, "element count overflows");
	}
	if (__builtin_mul_overflow(count, llm_st_dtype_size(t->dtype), &t->nbytes))
		return bad_tensor(path, t->name, "byte size overflows");
	return LLM_OK;
}

/* Checks data_offsets against the buffer and the size; sets t->data. */
static llm_err parse_offsets(const char *path, const llm_st_file *f, struct llm_st_tensor *t,
			     json_t *offs, size_t *begin_out)
{
	json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
	json_int_t begin, end;

	if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(b) ||
	    !json_is_integer(e))
		return bad_tensor(path, t->name, "data_offsets is not two integers");
	begin = json_integer_value(b);
	end = json_integer_value(e);
	if (begin < 0 || end < 0)
		return bad_tensor(path, t->name, "data_offsets [%lld, %lld] is negative",
				  (long long)begin, (long long)end);
	if (begin > end)
		return bad_tensor(path, t->name, "data_offsets begin %lld is after end %lld",
				  (long long)begin, (long long)end);
	if ((unsigned long long)end > f->data_len)
		return bad_tensor(path, t->name,
				  "data_offsets end %lld is past the end of the data (%zu bytes)",
				  (long long)end, f->data_len);
	if ((size_t)(end - begin) != t->nbytes)
		return bad_tensor(path, t->name,
				  "data_offsets span %lld bytes but shape and %s need %zu",
				  (long long)(end - begin), llm_st_dtype_name(t->dtype), t->nbytes);
	t->data = f->data + begin;
	*begin_out = (size_t)begin;
	return LLM_OK;
}

static llm_err parse_entry(const char *path, const llm_st_file *f, const char *name, json_t *entry,
			   struct llm_st_tensor *t, size_t *begin)
{
	json_t *dt = json_object_get(entry, "dtype");
	int dtype;
	llm_err err;

	memset(t, 0, sizeof(*t));
	t->name = name;
	if (!json_is_object(entry))
		return bad_tensor(path, name, "entry is not an object");
	if (!json_is_string(dt))
		return bad_tensor(path, name, "dtype is missing or not a string");
	dtype = dtype_from_name(json_string_value(dt));
	if (dtype < 0)
		return bad_tensor(path, name, "unknown dtype \"%s\"", json_string_value(dt));
	t->dtype = (enum llm_st_dtype)dtype;
	err = parse_shape(path, t, json_object_get(entry, "shape"));
	if (err)
		return err;
	return parse_offsets(path, f, t, json_object_get(entry, "data_offsets"), begin);
}

/* A tensor's span in the data buffer, for sorting by (begin, end). */
struct span {
	size_t begin, end, idx;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int cmp_by_name(const void *a, const void *b)
{
	const struct llm_st_tensor *ta = *(const struct llm_st_tensor *const *)a;
	const struct llm_st_tensor *tb = *(const struct llm_st_tensor *const *)b;

	return strcmp(ta->name, tb->name);
}

/* Reorders tensors by data offset and checks they tile the buffer. */
static llm_err check_layout(const char *path, llm_st_file *f)
{
	struct span *order = calloc(f->n ? f->n : 1, sizeof(*order));
	struct llm_st_tensor *sorted = calloc(f->n ? f->n : 1, sizeof(*sorted));
	size_t expect = 0, i;
	llm_err err = LLM_OK;

	if (!order || !sorted) {
		err = llm_fail(LLM_ENOMEM, "%s: out of memory", path);
		goto out_free;
	}
	for (i = 0; i < f->n; i++)
		order[i] = (struct span){f->begin[i], f->begin[i] + f->tensors[i].nbytes, i};
	qsort(order, f->n, sizeof(*order), cmp_span);
	for (i = 0; i < f->n && !err; i++) {
		const char *name = f->tensors[order[i].idx].name;

		if (order[i].begin < expect)
			err = bad_tensor(path, name, "data [%zu, %zu) overlaps tensor \"%s\"",
					 order[i].begin, order[i].end, sorted[i - 1].name);
		else if (order[i].begin > expect)
			err = bad_tensor(path, name, "hole of %zu bytes before its data at %zu",
					 order[i].begin - expect, order[i].begin);
		sorted[i] = f->tensors[order[i].idx];
		expect = order[i].end;
	}
	if (!err && expect != f->data_len)
		err = llm_fail(LLM_EPARSE, "%s: %zu bytes at the end of the data are in no tensor",
			       path, f->data_len - expect);
	if (!err) {
		free(f->tensors);
		f->tensors = sorted;
		sorted = NULL;
	}
out_free:
	free(sorted);
	free(order);
	return err;
}

static llm_err parse_tensors(const char *path, llm_st_file *f)
{
	const char *key;
	json_t *v;
	size_t i = 0;
	llm_err err;

	f->n = json_object_size(f->header);
	f->metadata = json_object_get(f->header, "__metadata__");
	if (f->metadata) {
		err = check_metadata(path, f->metadata);
		if (err)
			return err;
		f->n--;
	}
	f->tensors = calloc(f->n ? f->n : 1, sizeof(*f->tensors));
	f->begin = calloc(f->n ? f->n : 1, sizeof(*f->begin));
	f->by_name = calloc(f->n ? f->n : 1, sizeof(*f->by_name));
	if (!f->tensors || !f->begin || !f->by_name)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	json_object_foreach(f->header, key, v)
	{
		if (strcmp(key, "__metadata__") == 0)
			continue;
		err = parse_entry(path, f, key, v, &f->tensors[i], &f->begin[i]);
		if (err)
			return err;
		i++;
	}
	err = check_layout(path, f);
	if (err)
		return err;
	for (i = 0; i < f->n; i++)
		f->by_name[i] = &f->tensors[i];
	qsort(f->by_name, f->n, sizeof(*f->by_name), cmp_by_name);
	return LLM_OK;
}

llm_err llm_st_open(const char *path, llm_st_file **out)
{
	llm_st_file *f;
	llm_err err;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	}
	err = map_file(path, f);
	if (!err)
		err = parse_header(path, f);
	if (!err)
		err = parse_tensors(path, f);
	if (err) {
		llm_st_close(f);
		return err;
	}
	*out = f;
	return LLM_OK;
}

void llm_st_close(llm_st_file *f)
{
	if (!f)
		return;
	if (f->map)
		munmap(f->map, f->map_len);
	json_decref(f->header);
	free(f->tensors);
	free(f->begin);
	free(f->by_name);
	free(f->path);
	free(f);
}

size_t llm_st_count(const llm_st_file *f)
{
	return f->n;
}

const struct llm_st_tensor *llm_st_get(const llm_st_file *f, const char *name)
{
	struct llm_st_tensor key = {.name = name};
	const struct llm_st_tensor *kp = &key;
	const struct llm_st_tensor *const *hit;

	hit = bsearch(&kp, f->by_name, f->n, sizeof(*f->by_name), cmp_by_name);
	return hit ? *hit : NULL;
}

const struct llm_st_tensor *llm_st_at(const llm_st_file *f, size_t i)
{
	return i < f->n ? &f->tensors[i] : NULL;
}

const char *llm_st_metadata(const llm_st_file *f, const char *key)
{
	return json_string_value(json_object_get(f->metadata, key));
}

size_t llm_st_numel(const struct llm_st_tensor *t)
{
	size_t sz = llm_st_dtype_size(t->dtype);

	return sz ? t->nbytes / sz : 0;
}

/* ---- conversion ---- */

static float bits_to_f32(uint32_t bits)
{
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static uint32_t f32_to_bits(float f)
{
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	return bits;
}

static float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
	uint32_t e = 113;

	if (exp == 0x1f)
		return bits_to_f32(sign | 0x7f800000u | (man << 13));
	if (exp != 0)
		return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
	if (man == 0)
		return bits_to_f32(sign);
	while (!(man & 0x400u)) { /* subnormal: normalise */
		man <<= 1;
		e--;
	}
	return bits_to_f32(sign | (e << 23) | ((man & 0x3ffu) << 13));
}

static uint16_t f32_to_bf16(float f)
{
	uint32_t x = f32_to_bits(f);

	if ((x & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((x >> 16) | 0x40u);
	x += 0x7fffu + ((x >> 16) & 1u);
	return (uint16_t)(x >> 16);
}

static uint16_t f32_to_f16(float f)
{
	uint32_t x = f32_to_bits(f);
	uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;

	if (ax > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
	if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (ax <= 0x33000000u) /* <= 2^-25 rounds to zero (ties to even) */
		return (uint16_t)sign;
	if (ax < 0x38800000u) { /* below 2^-14: subnormal result */
		uint32_t m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - (ax >> 23);
		uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);

		if (rem > half || (rem == half && (r & 1u)))
			r++;
		return (uint16_t)(sign | r);
	}
	ax -= 0x38000000u; /* rebias exponent 127 -> 15 */
	ax += 0xfffu + ((ax >> 13) & 1u);
	return (uint16_t)(sign | (ax >> 13));
}

llm_err llm_st_read_f32(const struct llm_st_tensor *t, float *out, size_t n)
{
	const unsigned char *p = t->data;
	size_t count = llm_st_numel(t);
	uint16_t h;

	if (t->dtype != LLM_ST_F32 && t->dtype != LLM_ST_F16 && t->dtype != LLM_ST_BF16)
		return llm_fail(LLM_EUNSUPPORTED, "tensor \"%s\": cannot convert %s to F32",
				t->name, llm_st_dtype_name(t->dtype));
	if (n != count)
		return llm_fail(LLM_EINVAL, "tensor \"%s\": %zu elements, not %zu", t->name, count,
				n);
	if (t->dtype == LLM_ST_F32) {
		if (n)
			memcpy(out, p, n * sizeof(float));
		return LLM_OK;
	}
	for (size_t i = 0; i < n; i++) {
		h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
		out[i] = t->dtype == LLM_ST_F16 ? f16_to_f32(h) : bits_to_f32((uint32_t)h << 16);
	}
	return LLM_OK;
}

llm_err llm_st_f32_to_bf16(const float *in, uint16_t *out, size_t n)
{
	if (n && (!in || !out))
		return llm_fail(LLM_EINVAL, "f32_to_bf16: NULL buffer");
	for (size_t i = 0; i < n; i++)
		out[i] = f32_to_bf16(in[i]);
	return LLM_OK;
}

llm_err llm_st_f32_to_f16(const float *in, uint16_t *out, size_t n)
{
	if (n && (!in || !out))
		return llm_fail(LLM_EINVAL, "f32_to_f16: NULL buffer");
	for (size_t i = 0; i < n; i++)
		out[i] = f32_to_f16(in[i]);
	return LLM_OK;
}

/* ---- writing ---- */

/* Checks one output tensor and returns its byte size in *nbytes. */
static llm_err check_out(const char *path, const struct llm_st_out *t, size_t *nbytes)
{
	size_t count = 1;

	if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0)
		return llm_fail(LLM_EINVAL, "%s: tensor name is empty or reserved", path);
	if ((unsigned)t->dtype >= LLM_ST_DTYPE_COUNT_)
		return llm_fail(LLM_EINVAL, "%s: tensor \"%s\": unknown dtype %d", path, t->name,
				(int)t->dtype);
	if (t->ndim < 0 || t->ndim > LLM_ST_MAX_DIMS || (t->ndim && !t->shape))
		return llm_fail(LLM_EINVAL, "%s: tensor \"%s\": bad ndim %d", path, t->name,
				t->ndim);
	for (int i = 0; i < t->ndim; i++) {
		if (t->shape[i] < 0)
			return llm_fail(LLM_EINVAL, "%s: tensor \"%s\": negative shape[%d]", path,
					t->name, i);
		if ((uint64_t)t->shape[i] > SIZE_MAX ||
		    __builtin_mul_overflow(count, (size_t)t->shape[i], &count))
			return llm_fail(LLM_ETOOLARGE, "%s: tensor \"%s\": size overflows", path,
					t->name);
	}
	if (__builtin_mul_overflow(count, llm_st_dtype_size(t->dtype), nbytes))
		return llm_fail(LLM_ETOOLARGE, "%s: tensor \"%s\": size overflows", path, t->name);
	if (*nbytes && !t->data)
		return llm_fail(LLM_EINVAL, "%s: tensor \"%s\": NULL data", path, t->name);
	return LLM_OK;
}

static json_t *out_entry(const struct llm_st_out *t, size_t begin, size_t end)
{
	json_t *e = json_object(), *shape = json_array();

	for (int i = 0; shape && i < t->ndim; i++)
		json_array_append_new(shape, json_integer(t->shape[i]));
	if (!e || !shape) {
		json_decref(e);
		json_decref(shape);
		return NULL;
	}
	json_object_set_new(e, "dtype", json_string(llm_st_dtype_name(t->dtype)));
	json_object_set_new(e, "shape", shape);
	json_object_set_new(e, "data_offsets",
			    json_pack("[II]", (json_int_t)begin, (json_int_t)end));
	return e;
}

/* Builds the header object; *data_len receives the buffer size. */
static llm_err build_header(const char *path, const struct llm_st_out *tensors, size_t n,
			    const char *const *kv, json_t **out, size_t *data_len)
{
	json_t *root = json_object(), *meta;
	size_t off = 0, nbytes;
	llm_err err = LLM_OK;

	if (!root)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	if (kv && kv[0]) {
		meta = json_object();
		json_object_set_new(root, "__metadata__", meta);
		for (; kv[0] && !err; kv += 2)
			if (!kv[1] || json_object_set_new(meta, kv[0], json_string(kv[1])))
				err = llm_fail(LLM_EINVAL, "%s: bad metadata key \"%s\"", path,
					       kv[0]);
	}
	for (size_t i = 0; i < n && !err; i++) {
		err = check_out(path, &tensors[i], &nbytes);
		if (!err && json_object_get(root, tensors[i].name))
			err = llm_fail(LLM_EINVAL, "%s: tensor \"%s\" appears twice", path,
				       tensors[i].name);
		if (!err && __builtin_add_overflow(off, nbytes, &off))
			err = llm_fail(LLM_ETOOLARGE, "%s: data size overflows", path);
		if (!err && json_object_set_new(root, tensors[i].name,
						out_entry(&tensors[i], off - nbytes, off)))
			err = llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	}
	if (err) {
		json_decref(root);
		return err;
	}
	*out = root;
	*data_len = off;
	return LLM_OK;
}

static llm_err write_all(int fd, const void *buf, size_t len, const char *path)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return llm_fail(LLM_EIO, "%s: write: %s", path, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
	return LLM_OK;
}

/* Writes the length prefix, the padded header and every tensor's data. */
static llm_err write_body(int fd, const char *tmp, const char *hdr, const struct llm_st_out *ts,
			  size_t n)
{
	size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
	unsigned char prefix[8];
	llm_err err;

	if (padded > LLM_ST_MAX_HEADER)
		return llm_fail(LLM_ETOOLARGE, "%s: header of %zu bytes is over the cap", tmp,
				padded);
	for (int i = 0; i < 8; i++)
		prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	err = write_all(fd, prefix, 8, tmp);
	if (!err)
		err = write_all(fd, hdr, hlen, tmp);
	if (!err)
		err = write_all(fd, "       ", padded - hlen, tmp);
	for (size_t i = 0; i < n && !err; i++) {
		size_t nbytes;

		check_out(tmp, &ts[i], &nbytes); /* already checked: cannot fail */
		err = write_all(fd, ts[i].data, nbytes, tmp);
	}
	return err;
}

/* fsyncs the directory holding path so the rename is durable. */
static void sync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path + 1), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

llm_err llm_st_write(const char *path, const struct llm_st_out *tensors, size_t n,
		     const char *const *metadata_kv)
{
	char tmp[4096];
	json_t *root = NULL;
	char *hdr = NULL;
	size_t data_len;
	llm_err err;
	int fd;

	if (!path || (n && !tensors))
		return llm_fail(LLM_EINVAL, "llm_st_write: NULL argument");
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return llm_fail(LLM_EINVAL, "%s: path too long", path);
	err = build_header(path, tensors, n, metadata_kv, &root, &data_len);
	if (err)
		return err;
	hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!hdr)
		return llm_fail(LLM_ENOMEM, "%s: cannot encode header", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = llm_fail(LLM_EIO, "%s: %s", tmp, strerror(errno));
		goto out_free_hdr;
	}
	err = write_body(fd, tmp, hdr, tensors, n);
	if (!err && fsync(fd) != 0)
		err = llm_fail(LLM_EIO, "%s: fsync: %s", tmp, strerror(errno));
	if (close(fd) != 0 && !err)
		err = llm_fail(LLM_EIO, "%s: close: %s", tmp, strerror(errno));
	if (!err && rename(tmp, path) != 0)
		err = llm_fail(LLM_EIO, "%s: rename: %s", path, strerror(errno));
	if (err)
		unlink(tmp);
	else
		sync_parent(path);
out_free_hdr:
	free(hdr);
	return err;
}

/* ---- sharded sets ---- */

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct set_entry *)a)->name, ((const struct set_entry *)b)->name);
}

/* Reads a whole small file (at most max bytes) into a NUL-terminated heap
 * buffer sized to the file. */
static llm_err slurp(const char *path, size_t max, char **out, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	char *buf;

	if (!fp)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	if (fstat(fileno(fp), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > max) {
		fclose(fp);
		return llm_fail(LLM_ETOOLARGE, "%s: unreadable or over %zu bytes", path, max);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(fp);
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	}
	*len = fread(buf, 1, (size_t)st.st_size, fp);
	fclose(fp);
	buf[*len] = '\0';
	*out = buf;
	return LLM_OK;
}

/* The open shard for file (opened now if new). */
static llm_err set_shard(llm_st_set *s, const char *dir, const char *file, llm_st_file **out)
{
	char path[4096];
	llm_err err;

	for (size_t i = 0; i < s->nfiles; i++)
		if (strcmp(s->file_names[i], file) == 0) {
			*out = s->files[i];
			return LLM_OK;
		}
	if (!*file || file[0] == '/' || strstr(file, ".."))
		return llm_fail(LLM_EPARSE, "shard name \"%s\" is not a file in the directory",
				file);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return llm_fail(LLM_EINVAL, "%s/%s: path too long", dir, file);
	err = llm_st_open(path, out);
	if (err)
		return err;
	s->files[s->nfiles] = *out;
	s->file_names[s->nfiles++] = file;
	return LLM_OK;
}

/* Opens the shards of an index document and fills s->entries. */
static llm_err set_from_index(llm_st_set *s, const char *dir, const char *ipath)
{
	json_t *wm = json_object_get(s->index, "weight_map"), *v;
	const struct llm_st_tensor *t;
	const char *name;
	llm_st_file *shard;
	char why[1024];
	llm_err err;

	if (!json_is_object(wm))
		return llm_fail(LLM_EPARSE, "%s: weight_map is missing or not an object", ipath);
	s->n = json_object_size(wm);
	s->entries = calloc(s->n ? s->n : 1, sizeof(*s->entries));
	s->files = calloc(s->n ? s->n : 1, sizeof(*s->files));
	s->file_names = calloc(s->n ? s->n : 1, sizeof(*s->file_names));
	if (!s->entries || !s->files || !s->file_names)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", ipath);
	s->n = 0;
	json_object_foreach(wm, name, v)
	{
		if (!json_is_string(v))
			return bad_tensor(ipath, name, "weight_map value is not a string");
		err = set_shard(s, dir, json_string_value(v), &shard);
		if (err) {
			snprintf(why, sizeof(why), "%s", llm_last_error());
			return llm_fail(err, "%s: tensor \"%s\": shard \"%s\": %s", ipath, name,
					json_string_value(v), why);
		}
		t = llm_st_get(shard, name);
		if (!t)
			return bad_tensor(ipath, name, "not in its shard \"%s\"",
					  json_string_value(v));
		s->entries[s->n++] = (struct set_entry){name, t};
	}
	return LLM_OK;
}

static llm_err set_from_single(llm_st_set *s, const char *path)
{
	llm_err err;

	s->files = calloc(1, sizeof(*s->files));
	s->file_names = calloc(1, sizeof(*s->file_names));
	if (!s->files || !s->file_names)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	err = llm_st_open(path, &s->files[0]);
	if (err)
		return err;
	s->nfiles = 1;
	s->file_names[0] = LLM_ST_SINGLE_FILENAME;
	s->n = llm_st_count(s->files[0]);
	s->entries = calloc(s->n ? s->n : 1, sizeof(*s->entries));
	if (!s->entries)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < s->n; i++) {
		const struct llm_st_tensor *t = llm_st_at(s->files[0], i);

		s->entries[i] = (struct set_entry){t->name, t};
	}
	return LLM_OK;
}

llm_err llm_st_open_index(const char *dir, llm_st_set **out)
{
	char ipath[4096], spath[4096];
	llm_st_set *s;
	char *text = NULL;
	size_t len = 0;
	llm_err err;

	*out = NULL;
	snprintf(ipath, sizeof(ipath), "%s/%s", dir, LLM_ST_INDEX_FILENAME);
	snprintf(spath, sizeof(spath), "%s/%s", dir, LLM_ST_SINGLE_FILENAME);
	s = calloc(1, sizeof(*s));
	if (!s)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", dir);
	err = slurp(ipath, LLM_ST_MAX_HEADER, &text, &len);
	if (!err) {
		err = llm_json_parse(text, len, LLM_ST_MAX_HEADER, ipath, &s->index);
		free(text);
		if (!err && !json_is_object(s->index))
			err = llm_fail(LLM_EPARSE, "%s: not a JSON object", ipath);
		if (!err)
			err = set_from_index(s, dir, ipath);
	} else if (err == LLM_ENOTFOUND && access(spath, F_OK) == 0) {
		err = set_from_single(s, spath);
	} else if (err == LLM_ENOTFOUND) {
		err = llm_fail(LLM_ENOTFOUND, "%s: neither %s nor %s", dir, LLM_ST_INDEX_FILENAME,
			       LLM_ST_SINGLE_FILENAME);
	}
	if (err) {
		llm_st_set_close(s);
		return err;
	}
	qsort(s->entries, s->n, sizeof(*s->entries), cmp_entry);
	*out = s;
	return LLM_OK;
}

const struct llm_st_tensor *llm_st_set_get(const llm_st_set *set, const char *name)
{
	struct set_entry key = {name, NULL}, *hit;

	hit = bsearch(&key, set->entries, set->n, sizeof(*set->entries), cmp_entry);
	return hit ? hit->t : NULL;
}

size_t llm_st_set_count(const llm_st_set *set)
{
	return set->n;
}

void llm_st_set_close(llm_st_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->nfiles; i++)
		llm_st_close(set->files[i]);
	free(set->files);
	free(set->file_names);
	free(set->entries);
	json_decref(set->index);
	free(set);
}
