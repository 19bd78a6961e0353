/* Unit tests for lib/llm_safetensors: reads of files made by the Python
 * safetensors library (tests/golden/safetensors/), byte equality of the C
 * writer with it, round trips, every malformed-header case, exhaustive F16
 * conversion, RNE rounding to F16/BF16, and sharded checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_json.h"
#include "llm_safetensors.h"
#include "tmpdir.h"

#define GOLDEN "tests/golden/safetensors/"

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = malloc(1 << 16);

	assert_non_null(fp);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 16, fp);
	fclose(fp);
	return buf;
}

/* Writes a file with the given header text and data_len zero bytes of data;
 * hlen overrides the length prefix when non-zero. */
static void craft(const char *path, const char *header, uint64_t hlen, size_t data_len)
{
	size_t n = strlen(header), total = 8 + n + data_len;
	unsigned char *buf = calloc(1, total);

	assert_non_null(buf);
	if (!hlen)
		hlen = n;
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + 8, header, n);
	write_bytes(path, buf, total);
	free(buf);
}

/* Opens a crafted file and checks the code and that the detail names the
 * file, the tensor (when given) and the problem. */
static void expect_bad(const char *header, uint64_t hlen, size_t data_len, const char *tensor,
		       const char *problem)
{
	char path[128], want[160];
	llm_st_file *f = (llm_st_file *)1;

	tmp_path(path, sizeof(path), "bad.safetensors");
	craft(path, header, hlen, data_len);
	assert_int_equal(llm_st_open(path, &f), LLM_EPARSE);
	assert_null(f);
	if (!strstr(llm_last_error(), path) || !strstr(llm_last_error(), problem))
		fail_msg("detail \"%s\" lacks \"%s\" or \"%s\"", llm_last_error(), path, problem);
	if (tensor) {
		snprintf(want, sizeof(want), "tensor \"%s\"", tensor);
		if (!strstr(llm_last_error(), want))
			fail_msg("detail \"%s\" lacks %s", llm_last_error(), want);
	}
}

/* ---- golden files made by the Python library ---- */

static json_t *load_expected(const char *section)
{
	static json_t *doc;
	size_t len;
	unsigned char *text;

	if (!doc) {
		text = read_bytes(GOLDEN "expected.json", &len);
		assert_int_equal(llm_json_parse((char *)text, len, 1 << 16, "expected.json", &doc),
				 LLM_OK);
		free(text);
	}
	return json_object_get(doc, section);
}

static uint32_t f32_bits(float f)
{
	uint32_t b;

	memcpy(&b, &f, sizeof(b));
	return b;
}

static float bits_f32(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

/* Checks that tensor t converts to exactly the float bit patterns in bits. */
static void assert_bits(const struct llm_st_tensor *t, json_t *bits)
{
	size_t n = json_array_size(bits);
	float *vals = calloc(n ? n : 1, sizeof(float));

	assert_non_null(vals);
	assert_int_equal(llm_st_read_f32(t, vals, n), LLM_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(f32_bits(vals[i]),
				 (uint32_t)json_integer_value(json_array_get(bits, i)));
	free(vals);
}

static void check_golden(const char *file, const char *section, enum llm_st_dtype dtype)
{
	json_t *exp = load_expected(section), *shape = json_object_get(exp, "shape");
	const char *name = json_string_value(json_object_get(exp, "name"));
	const struct llm_st_tensor *t;
	llm_st_file *f;

	assert_int_equal(llm_st_open(file, &f), LLM_OK);
	assert_int_equal(llm_st_count(f), 1);
	t = llm_st_get(f, name);
	assert_non_null(t);
	assert_ptr_equal(t, llm_st_at(f, 0));
	assert_int_equal(t->dtype, dtype);
	assert_int_equal(t->ndim, (int)json_array_size(shape));
	for (int i = 0; i < t->ndim; i++)
		assert_int_equal(t->shape[i], json_integer_value(json_array_get(shape, i)));
	assert_bits(t, json_object_get(exp, "bits"));
	llm_st_close(f);
}

static void test_st_golden_f32_reads_exact_values(void **state)
{
	llm_st_file *f;

	(void)state;
	check_golden(GOLDEN "f32.safetensors", "f32", LLM_ST_F32);
	assert_int_equal(llm_st_open(GOLDEN "f32.safetensors", &f), LLM_OK);
	assert_string_equal(llm_st_metadata(f, "format"), "np");
	assert_null(llm_st_metadata(f, "missing"));
	assert_null(llm_st_get(f, "y"));
	assert_null(llm_st_at(f, 1));
	llm_st_close(f);
}

static void test_st_golden_f16_reads_exact_values(void **state)
{
	(void)state;
	check_golden(GOLDEN "f16.safetensors", "f16", LLM_ST_F16);
}

static void test_st_golden_bf16_reads_exact_values(void **state)
{
	(void)state;
	check_golden(GOLDEN "bf16.safetensors", "bf16", LLM_ST_BF16);
}

static void test_st_golden_mixed_iterates_in_file_order(void **state)
{
	json_t *order = json_object_get(load_expected("mixed"), "order");
	llm_st_file *f;

	(void)state;
	assert_int_equal(llm_st_open(GOLDEN "mixed.safetensors", &f), LLM_OK);
	assert_int_equal(llm_st_count(f), json_array_size(order));
	for (size_t i = 0; i < llm_st_count(f); i++)
		assert_string_equal(llm_st_at(f, i)->name,
				    json_string_value(json_array_get(order, i)));
	assert_bits(llm_st_get(f, "a.weight"), json_object_get(load_expected("mixed"), "a_bits"));
	llm_st_close(f);
}

/* The same tensors as make_reference.py's mixed.safetensors. */
static void test_st_writer_matches_python_bytes(void **state)
{
	json_t *exp = load_expected("mixed");
	float a[6];
	uint16_t c[4], d[4];
	int64_t sa[] = {2, 3}, sc[] = {4}, sd[] = {2, 2};
	const char *meta[] = {"format", "pt", NULL};
	char path[128];
	unsigned char *want, *got;
	size_t wlen, glen;

	(void)state;
	for (int i = 0; i < 6; i++)
		a[i] = (float)i / 4;
	for (int i = 0; i < 4; i++) {
		c[i] = (uint16_t)json_integer_value(
			json_array_get(json_object_get(exp, "c_f16_bits"), i));
		d[i] = (uint16_t)json_integer_value(
			json_array_get(json_object_get(exp, "d_bf16_bits"), i));
	}
	struct llm_st_out ts[] = {
		{"a.weight", LLM_ST_F32, 2, sa, a},
		{"d.bf", LLM_ST_BF16, 2, sd, d},
		{"c.half", LLM_ST_F16, 1, sc, c},
	};
	tmp_path(path, sizeof(path), "mixed.safetensors");
	assert_int_equal(llm_st_write(path, ts, 3, meta), LLM_OK);
	want = read_bytes(GOLDEN "mixed.safetensors", &wlen);
	got = read_bytes(path, &glen);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(want);
	free(got);
}

/* ---- round trip ---- */

static void test_st_round_trip_keeps_tensors_metadata_and_order(void **state)
{
	float w[12], back[12], scalar = 3.5f, sv;
	uint16_t h[3], bh[3];
	int64_t sw[] = {3, 4}, sh[] = {3}, sz[] = {0, 5};
	const float hv[3] = {1.5f, -0.25f, 1024.0f};
	const char *meta[] = {"b", "2", "a", "1", NULL};
	const struct llm_st_tensor *t;
	llm_st_file *f;
	char path[128];

	(void)state;
	for (int i = 0; i < 12; i++)
		w[i] = (float)i * 0.1f - 0.5f;
	assert_int_equal(llm_st_f32_to_f16(hv, h, 3), LLM_OK);
	struct llm_st_out ts[] = {
		{"zeta", LLM_ST_F32, 2, sw, w},
		{"alpha", LLM_ST_F16, 1, sh, h},
		{"scalar", LLM_ST_F32, 0, NULL, &scalar},
		{"empty", LLM_ST_BF16, 2, sz, NULL},
	};
	tmp_path(path, sizeof(path), "rt.safetensors");
	assert_int_equal(llm_st_write(path, ts, 4, meta), LLM_OK);
	assert_int_equal(llm_st_open(path, &f), LLM_OK);
	assert_int_equal(llm_st_count(f), 4);
	assert_string_equal(llm_st_at(f, 0)->name, "zeta");
	assert_string_equal(llm_st_at(f, 1)->name, "alpha");
	assert_string_equal(llm_st_at(f, 2)->name, "scalar");
	assert_string_equal(llm_st_metadata(f, "a"), "1");
	assert_string_equal(llm_st_metadata(f, "b"), "2");
	t = llm_st_get(f, "zeta");
	assert_int_equal(t->nbytes, 48);
	assert_int_equal(llm_st_read_f32(t, back, 12), LLM_OK);
	assert_memory_equal(back, w, sizeof(w));
	t = llm_st_get(f, "alpha");
	assert_int_equal(llm_st_read_f32(t, back, 3), LLM_OK);
	assert_memory_equal(back, hv, sizeof(hv));
	memcpy(bh, t->data, sizeof(bh));
	assert_memory_equal(bh, h, sizeof(h));
	t = llm_st_get(f, "scalar");
	assert_int_equal(t->ndim, 0);
	assert_int_equal(llm_st_read_f32(t, &sv, 1), LLM_OK);
	assert_true(sv == 3.5f);
	t = llm_st_get(f, "empty");
	assert_int_equal(t->nbytes, 0);
	assert_int_equal(t->shape[0], 0);
	assert_int_equal(t->shape[1], 5);
	llm_st_close(f);
	strncat(path, ".tmp", sizeof(path) - strlen(path) - 1);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_st_write_header_is_padded_to_eight(void **state)
{
	float v = 1.0f;
	int64_t s[] = {1};
	struct llm_st_out t = {"abcd", LLM_ST_F32, 1, s, &v}; /* 57-byte header */
	unsigned char *buf;
	char path[128];
	size_t len;
	uint64_t hlen = 0;

	(void)state;
	tmp_path(path, sizeof(path), "pad.safetensors");
	assert_int_equal(llm_st_write(path, &t, 1, NULL), LLM_OK);
	buf = read_bytes(path, &len);
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | buf[i];
	assert_int_equal(hlen % 8, 0);
	assert_int_equal(hlen, 64);
	assert_int_equal(len, 8 + hlen + 4);
	assert_memory_equal(buf + 8, "{\"abcd\":{", 9);
	assert_int_equal(buf[8 + 56], '}');
	assert_memory_equal(buf + 8 + 57, "       ", 7);
	free(buf);
}

static void test_st_write_rejects_bad_tensors(void **state)
{
	float v[2] = {0};
	int64_t s[] = {2}, neg[] = {-1};
	struct llm_st_out dup[] = {{"x", LLM_ST_F32, 1, s, v}, {"x", LLM_ST_F32, 1, s, v}};
	struct llm_st_out bad_dtype = {"y", (enum llm_st_dtype)99, 1, s, v};
	struct llm_st_out bad_shape = {"y", LLM_ST_F32, 1, neg, v};
	struct llm_st_out too_many = {"y", LLM_ST_F32, 9, s, v};
	struct llm_st_out reserved = {"__metadata__", LLM_ST_F32, 1, s, v};
	char path[128];

	(void)state;
	tmp_path(path, sizeof(path), "never.safetensors");
	assert_int_equal(llm_st_write(path, dup, 2, NULL), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "\"x\" appears twice"));
	assert_int_equal(llm_st_write(path, &bad_dtype, 1, NULL), LLM_EINVAL);
	assert_int_equal(llm_st_write(path, &bad_shape, 1, NULL), LLM_EINVAL);
	assert_int_equal(llm_st_write(path, &too_many, 1, NULL), LLM_EINVAL);
	assert_int_equal(llm_st_write(path, &reserved, 1, NULL), LLM_EINVAL);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_st_write_to_missing_dir_is_io_error(void **state)
{
	(void)state;
	assert_int_equal(llm_st_write("/nonexistent-dir/x.safetensors", NULL, 0, NULL), LLM_EIO);
}

/* ---- malformed files ---- */

static void test_st_open_missing_file_is_not_found(void **state)
{
	llm_st_file *f = (llm_st_file *)1;

	(void)state;
	assert_int_equal(llm_st_open("/nonexistent/model.safetensors", &f), LLM_ENOTFOUND);
	assert_null(f);
	assert_non_null(strstr(llm_last_error(), "/nonexistent/model.safetensors"));
}

static void test_st_file_shorter_than_eight_bytes(void **state)
{
	char path[128];
	llm_st_file *f;

	(void)state;
	tmp_path(path, sizeof(path), "short.safetensors");
	write_bytes(path, "abc", 3);
	assert_int_equal(llm_st_open(path, &f), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), path));
	assert_non_null(strstr(llm_last_error(), "shorter than the 8-byte header"));
}

static void test_st_header_length_past_end(void **state)
{
	(void)state;
	expect_bad("{}", 1000, 0, NULL,
		   "header length 1000 is past the end of the file (10 bytes)");
}

static void test_st_header_length_over_cap(void **state)
{
	(void)state;
	expect_bad("{}", (uint64_t)1 << 40, 0, NULL, "over the cap");
	expect_bad("{}", UINT64_MAX, 0, NULL, "over the cap");
}

static void test_st_header_invalid_json_has_line_and_column(void **state)
{
	(void)state;
	expect_bad("{\"a\":\n  {\"dtype\": }}", 0, 0, NULL, ":2:");
}

static void test_st_header_not_an_object(void **state)
{
	(void)state;
	expect_bad("[1, 2]", 0, 0, NULL, "header is not a JSON object");
}

static void test_st_entry_not_an_object(void **state)
{
	(void)state;
	expect_bad("{\"w\": 5}", 0, 0, "w", "entry is not an object");
}

static void test_st_unknown_dtype(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 0, 16, "w",
		   "unknown dtype \"F128\"");
	expect_bad("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "w", "dtype");
}

static void test_st_shape_must_be_non_negative_integers(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 0, 12, "w",
		   "shape is not an array");
	expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, 0, "w",
		   "shape[1] is not a non-negative integer");
	expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 0, 4, "w",
		   "shape[0] is not a non-negative integer");
	expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 0, 8,
		   "w", "shape[0]");
}

static void test_st_more_than_eight_dims(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
		   "\"data_offsets\":[0,1]}}",
		   0, 1, "w", "9 dimensions, more than 8");
}

static void test_st_size_overflow(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
		   "\"data_offsets\":[0,4]}}",
		   0, 4, "w", "element count overflows");
	expect_bad("{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
		   "\"data_offsets\":[0,4]}}",
		   0, 4, "w", "byte size overflows");
}

static void test_st_data_offsets_not_two_integers(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 0, 1, "w",
		   "data_offsets is not two integers");
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 0, 1, "w",
		   "data_offsets is not two integers");
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]}}", 0, 1, "w",
		   "data_offsets is not two integers");
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, 1, "w",
		   "data_offsets is not two integers");
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 0, 1, "w",
		   "negative");
}

static void test_st_data_offsets_begin_after_end(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[5,4]}}", 0, 8, "w",
		   "data_offsets begin 5 is after end 4");
}

static void test_st_data_offsets_end_past_buffer(void **state)
{
	(void)state;
	expect_bad("{\"h.0.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[1024],"
		   "\"data_offsets\":[0,4096]}}",
		   0, 3072, "h.0.attn.c_attn.weight",
		   "data_offsets end 4096 is past the end of the data (3072 bytes)");
}

static void test_st_size_disagrees_with_shape(void **state)
{
	(void)state;
	expect_bad("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
		   "w", "span 24 bytes but shape and F16 need 12");
}

static void test_st_overlapping_tensors(void **state)
{
	(void)state;
	expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
		   0, 6, "b", "overlaps tensor \"a\"");
}

static void test_st_hole_between_tensors(void **state)
{
	(void)state;
	expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		   "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}",
		   0, 8, "b", "hole of 2 bytes");
	expect_bad("{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", 0, 3, "b",
		   "hole of 1 bytes");
}

static void test_st_trailing_bytes_not_covered(void **state)
{
	(void)state;
	expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 0, 7, NULL,
		   "3 bytes at the end of the data are in no tensor");
}

static void test_st_metadata_values_must_be_strings(void **state)
{
	(void)state;
	expect_bad("{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}", 0, 0, NULL,
		   "__metadata__ value for \"n\" is not a string");
	expect_bad("{\"__metadata__\":[]}", 0, 0, NULL, "__metadata__ is not an object");
}

static void test_st_duplicate_tensor_names_rejected(void **state)
{
	(void)state;
	expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		   "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
		   0, 2, NULL, "duplicate object key");
}

static void test_st_empty_header_object_is_valid(void **state)
{
	char path[128];
	llm_st_file *f;

	(void)state;
	tmp_path(path, sizeof(path), "empty.safetensors");
	craft(path, "{}      ", 0, 0);
	assert_int_equal(llm_st_open(path, &f), LLM_OK);
	assert_int_equal(llm_st_count(f), 0);
	assert_null(llm_st_at(f, 0));
	assert_null(llm_st_get(f, "x"));
	llm_st_close(f);
	llm_st_close(NULL);
}

/* ---- conversion ---- */

/* Reference F16 decoding by arithmetic (ldexpf), not bit assembly. */
static float ref_f16(uint16_t h)
{
	int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	float mag;

	if (exp == 0)
		mag = ldexpf((float)man, -24);
	else if (exp == 31)
		mag = man ? NAN : INFINITY;
	else
		mag = ldexpf((float)(1024 + man), exp - 25);
	return (h & 0x8000) ? -mag : mag;
}

static void test_st_f16_to_f32_is_exact_for_all_65536_values(void **state)
{
	static uint16_t h[65536];
	static float out[65536];
	int64_t shape[] = {65536};
	struct llm_st_tensor t = {"all", LLM_ST_F16, 1, {0}, sizeof(h), h};

	(void)state;
	t.shape[0] = shape[0];
	for (uint32_t i = 0; i < 65536; i++)
		h[i] = (uint16_t)i; /* little-endian host, as the file format */
	assert_int_equal(llm_st_read_f32(&t, out, 65536), LLM_OK);
	for (uint32_t i = 0; i < 65536; i++) {
		float ref = ref_f16((uint16_t)i);
		uint32_t got = f32_bits(out[i]);

		if (isnan(ref)) {
			assert_true(isnan(out[i]));
			assert_int_equal(got >> 31, i >> 15);
			assert_int_equal((got >> 13) & 0x3ff, i & 0x3ff); /* payload kept */
			assert_int_equal(got & 0x1fff, 0);
		} else if (f32_bits(ref) != got) {
			fail_msg("f16 0x%04x: got 0x%08x want 0x%08x", i, got, f32_bits(ref));
		}
	}
}

static void test_st_bf16_to_f32_is_a_shift(void **state)
{
	uint16_t h[3] = {0x3f80, 0xc049, 0x7fc1};
	struct llm_st_tensor t = {"b", LLM_ST_BF16, 1, {3}, sizeof(h), h};
	float out[3];

	(void)state;
	assert_int_equal(llm_st_read_f32(&t, out, 3), LLM_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(f32_bits(out[i]), (uint32_t)h[i] << 16);
}

static void test_st_read_f32_checks_count_and_dtype(void **state)
{
	int32_t ints[2] = {1, 2};
	struct llm_st_tensor ti = {"i", LLM_ST_I32, 1, {2}, sizeof(ints), ints};
	struct llm_st_tensor tf = {"f", LLM_ST_F32, 1, {2}, sizeof(ints), ints};
	float out[4];

	(void)state;
	assert_int_equal(llm_st_read_f32(&ti, out, 2), LLM_EUNSUPPORTED);
	assert_int_equal(llm_st_read_f32(&tf, out, 3), LLM_EINVAL);
	assert_int_equal(llm_st_read_f32(&tf, out, 1), LLM_EINVAL);
	assert_int_equal(llm_st_read_f32(&tf, out, 2), LLM_OK);
}

/* Every finite F16 survives F16 -> F32 -> F16, and each midpoint between
 * neighbours rounds to the even one while a nudge either way does not tie. */
static void test_st_f32_to_f16_rounds_to_nearest_even(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < 0x7bff; i++) {
		float a = ref_f16((uint16_t)i), b = ref_f16((uint16_t)(i + 1));
		float mid = (float)(((double)a + (double)b) / 2), in[4] = {a, mid, 0, 0};
		uint16_t out[4];

		in[2] = nextafterf(mid, 0.0f);
		in[3] = nextafterf(mid, INFINITY);
		assert_int_equal(llm_st_f32_to_f16(in, out, 4), LLM_OK);
		assert_int_equal(out[0], i);
		assert_int_equal(out[1], (i & 1) ? i + 1 : i);
		assert_int_equal(out[2], i);
		assert_int_equal(out[3], i + 1);
		in[0] = -a;
		assert_int_equal(llm_st_f32_to_f16(in, out, 1), LLM_OK);
		assert_int_equal(out[0], i | 0x8000);
	}
}

static void test_st_f32_to_f16_specials(void **state)
{
	float in[6] = {INFINITY, -INFINITY, NAN, 1e10f, -65520.0f, 0};
	uint16_t out[6];

	(void)state;
	in[5] = nextafterf(65520.0f, 0.0f); /* just below the tie above 65504 */
	assert_int_equal(llm_st_f32_to_f16(in, out, 6), LLM_OK);
	assert_int_equal(out[0], 0x7c00);
	assert_int_equal(out[1], 0xfc00);
	assert_int_equal(out[2] & 0x7c00, 0x7c00);
	assert_true((out[2] & 0x3ff) != 0);
	assert_int_equal(out[3], 0x7c00);
	assert_int_equal(out[4], 0xfc00);
	assert_int_equal(out[5], 0x7bff);
	assert_int_equal(llm_st_f32_to_f16(NULL, out, 1), LLM_EINVAL);
}

static void test_st_f32_to_bf16_rounds_to_nearest_even(void **state)
{
	float in[8];
	uint16_t out[8];

	(void)state;
	in[0] = bits_f32(0x3f808000); /* tie, even below: stays 0x3f80 */
	in[1] = bits_f32(0x3f818000); /* tie, odd below: up to 0x3f82 */
	in[2] = bits_f32(0x3f808001); /* just above the tie: up */
	in[3] = bits_f32(0x3f807fff); /* just below the tie: down */
	in[4] = bits_f32(0x7f7fffff); /* FLT_MAX rounds to infinity */
	in[5] = NAN;
	in[6] = -0.0f;
	in[7] = bits_f32(0xff800000); /* -inf */
	assert_int_equal(llm_st_f32_to_bf16(in, out, 8), LLM_OK);
	assert_int_equal(out[0], 0x3f80);
	assert_int_equal(out[1], 0x3f82);
	assert_int_equal(out[2], 0x3f81);
	assert_int_equal(out[3], 0x3f80);
	assert_int_equal(out[4], 0x7f80);
	assert_int_equal(out[5] & 0x7f80, 0x7f80);
	assert_true((out[5] & 0x7f) != 0);
	assert_int_equal(out[6], 0x8000);
	assert_int_equal(out[7], 0xff80);
	/* every BF16 value survives BF16 -> F32 -> BF16 (NaNs stay NaN) */
	for (uint32_t i = 0; i < 65536; i++) {
		float f = bits_f32(i << 16);
		uint16_t b;

		assert_int_equal(llm_st_f32_to_bf16(&f, &b, 1), LLM_OK);
		if (isnan(f))
			assert_true(isnan(bits_f32((uint32_t)b << 16)));
		else
			assert_int_equal(b, i);
	}
}

static void test_st_golden_bf16_matches_c_rounding(void **state)
{
	const float src[4] = {1.0f, -3.140625f, 1.00390625f, 1e30f};
	json_t *bits = json_object_get(load_expected("bf16"), "bf16_bits");
	uint16_t out[4];

	(void)state;
	assert_int_equal(llm_st_f32_to_bf16(src, out, 4), LLM_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(out[i], json_integer_value(json_array_get(bits, i)));
}

static void test_st_dtype_names_and_sizes(void **state)
{
	(void)state;
	assert_string_equal(llm_st_dtype_name(LLM_ST_BF16), "BF16");
	assert_string_equal(llm_st_dtype_name(LLM_ST_BOOL), "BOOL");
	assert_string_equal(llm_st_dtype_name((enum llm_st_dtype)99), "?");
	assert_int_equal(llm_st_dtype_size(LLM_ST_F64), 8);
	assert_int_equal(llm_st_dtype_size(LLM_ST_F16), 2);
	assert_int_equal(llm_st_dtype_size(LLM_ST_U8), 1);
	assert_int_equal(llm_st_dtype_size((enum llm_st_dtype)99), 0);
}

/* ---- sharded checkpoints ---- */

static void test_st_sharded_index_finds_every_tensor(void **state)
{
	json_t *exp = load_expected("sharded"), *v;
	const char *name;
	llm_st_set *set;

	(void)state;
	assert_int_equal(llm_st_open_index(GOLDEN "sharded", &set), LLM_OK);
	assert_int_equal(llm_st_set_count(set), json_object_size(exp));
	json_object_foreach(exp, name, v)
	{
		const struct llm_st_tensor *t = llm_st_set_get(set, name);

		assert_non_null(t);
		assert_string_equal(t->name, name);
		assert_bits(t, json_object_get(v, "bits"));
	}
	assert_null(llm_st_set_get(set, "layer.2.weight"));
	llm_st_set_close(set);
	llm_st_set_close(NULL);
}

static void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

static void test_st_sharded_index_missing_shard(void **state)
{
	char path[128];
	llm_st_set *set = (llm_st_set *)1;

	(void)state;
	tmp_path(path, sizeof(path), "model.safetensors.index.json");
	write_text(path, "{\"weight_map\":{\"w\":\"gone.safetensors\"}}");
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_ENOTFOUND);
	assert_null(set);
	assert_non_null(strstr(llm_last_error(), "tensor \"w\""));
	assert_non_null(strstr(llm_last_error(), "gone.safetensors"));
	unlink(path);
}

static void test_st_sharded_index_tensor_absent_from_shard(void **state)
{
	char path[128];
	llm_st_set *set;
	float v = 1;
	int64_t s[] = {1};
	struct llm_st_out t = {"present", LLM_ST_F32, 1, s, &v};

	(void)state;
	tmp_path(path, sizeof(path), "shard.safetensors");
	assert_int_equal(llm_st_write(path, &t, 1, NULL), LLM_OK);
	tmp_path(path, sizeof(path), "model.safetensors.index.json");
	write_text(path, "{\"weight_map\":{\"present\":\"shard.safetensors\","
			 "\"absent\":\"shard.safetensors\"}}");
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), path));
	assert_non_null(strstr(llm_last_error(), "tensor \"absent\""));
	assert_non_null(strstr(llm_last_error(), "not in its shard \"shard.safetensors\""));
	write_text(path, "{\"weight_map\":{\"present\":\"../shard.safetensors\"}}");
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_EPARSE);
	write_text(path, "{\"weight_map\":[]}");
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), "weight_map"));
	write_text(path, "{\"weight_map\":");
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_EPARSE);
	unlink(path);
}

static void test_st_single_file_directory(void **state)
{
	char path[128];
	llm_st_set *set;
	float v[2] = {1, 2};
	int64_t s[] = {2};
	struct llm_st_out t = {"only", LLM_ST_F32, 1, s, v};

	(void)state;
	tmp_path(path, sizeof(path), "model.safetensors");
	assert_int_equal(llm_st_write(path, &t, 1, NULL), LLM_OK);
	assert_int_equal(llm_st_open_index(tmpdir, &set), LLM_OK);
	assert_int_equal(llm_st_set_count(set), 1);
	assert_non_null(llm_st_set_get(set, "only"));
	llm_st_set_close(set);
	unlink(path);
}

static void test_st_directory_without_model_is_not_found(void **state)
{
	llm_st_set *set;

	(void)state;
	assert_int_equal(llm_st_open_index("/nonexistent-dir", &set), LLM_ENOTFOUND);
	assert_non_null(strstr(llm_last_error(), "/nonexistent-dir"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_st_golden_f32_reads_exact_values),
		cmocka_unit_test(test_st_golden_f16_reads_exact_values),
		cmocka_unit_test(test_st_golden_bf16_reads_exact_values),
		cmocka_unit_test(test_st_golden_mixed_iterates_in_file_order),
		cmocka_unit_test(test_st_writer_matches_python_bytes),
		cmocka_unit_test(test_st_round_trip_keeps_tensors_metadata_and_order),
		cmocka_unit_test(test_st_write_header_is_padded_to_eight),
		cmocka_unit_test(test_st_write_rejects_bad_tensors),
		cmocka_unit_test(test_st_write_to_missing_dir_is_io_error),
		cmocka_unit_test(test_st_open_missing_file_is_not_found),
		cmocka_unit_test(test_st_file_shorter_than_eight_bytes),
		cmocka_unit_test(test_st_header_length_past_end),
		cmocka_unit_test(test_st_header_length_over_cap),
		cmocka_unit_test(test_st_header_invalid_json_has_line_and_column),
		cmocka_unit_test(test_st_header_not_an_object),
		cmocka_unit_test(test_st_entry_not_an_object),
		cmocka_unit_test(test_st_unknown_dtype),
		cmocka_unit_test(test_st_shape_must_be_non_negative_integers),
		cmocka_unit_test(test_st_more_than_eight_dims),
		cmocka_unit_test(test_st_size_overflow),
		cmocka_unit_test(test_st_data_offsets_not_two_integers),
		cmocka_unit_test(test_st_data_offsets_begin_after_end),
		cmocka_unit_test(test_st_data_offsets_end_past_buffer),
		cmocka_unit_test(test_st_size_disagrees_with_shape),
		cmocka_unit_test(test_st_overlapping_tensors),
		cmocka_unit_test(test_st_hole_between_tensors),
		cmocka_unit_test(test_st_trailing_bytes_not_covered),
		cmocka_unit_test(test_st_metadata_values_must_be_strings),
		cmocka_unit_test(test_st_duplicate_tensor_names_rejected),
		cmocka_unit_test(test_st_empty_header_object_is_valid),
		cmocka_unit_test(test_st_f16_to_f32_is_exact_for_all_65536_values),
		cmocka_unit_test(test_st_bf16_to_f32_is_a_shift),
		cmocka_unit_test(test_st_read_f32_checks_count_and_dtype),
		cmocka_unit_test(test_st_f32_to_f16_rounds_to_nearest_even),
		cmocka_unit_test(test_st_f32_to_f16_specials),
		cmocka_unit_test(test_st_f32_to_bf16_rounds_to_nearest_even),
		cmocka_unit_test(test_st_golden_bf16_matches_c_rounding),
		cmocka_unit_test(test_st_dtype_names_and_sizes),
		cmocka_unit_test(test_st_sharded_index_finds_every_tensor),
		cmocka_unit_test(test_st_sharded_index_missing_shard),
		cmocka_unit_test(test_st_sharded_index_tensor_absent_from_shard),
		cmocka_unit_test(test_st_single_file_directory),
		cmocka_unit_test(test_st_directory_without_model_is_not_found),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
