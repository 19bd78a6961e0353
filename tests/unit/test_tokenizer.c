/* Unit tests for lib/llm_tokenizer*: BPE merge order, byte fallback, fused
 * unknowns and ignore_merges on hand-made vocabularies; the GPT-2 and
 * Llama-3 split patterns; WordPiece with the BERT normalizer; SentencePiece-
 * style normalisation and decoding; added tokens; and one test per kind of
 * malformed file. Expected ids follow by hand from the vocabularies here
 * (tests/e2e compares with HF tokenizers on a large corpus). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_tokenizer.h"
#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"
#include "tmpdir.h"

static const char *write_tmp(const char *name, const char *data, size_t len)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static llm_tok *load_json(const char *json)
{
	llm_tok *t = NULL;
	llm_err err = llm_tok_load_json(json, strlen(json), "test.json", &t);

	if (err)
		fail_msg("load: %s", llm_last_error());
	return t;
}

/* Encodes text and compares with the n expected ids. */
static void expect_ids(const llm_tok *t, const char *text, bool special, const uint32_t *want,
		       size_t n)
{
	uint32_t *ids;
	size_t got;

	assert_int_equal(llm_tok_encode(t, text, strlen(text), special, &ids, &got), LLM_OK);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], want[i]);
	free(ids);
}

#define EXPECT(t, text, special, ...)                                                  \
	do {                                                                           \
		const uint32_t want_[] = {__VA_ARGS__};                                \
		expect_ids(t, text, special, want_, sizeof(want_) / sizeof(want_[0])); \
	} while (0)

static void expect_decode(const llm_tok *t, const uint32_t *ids, size_t n, bool skip,
			  const char *want)
{
	char *text;
	size_t len;

	assert_int_equal(llm_tok_decode(t, ids, n, skip, &text, &len), LLM_OK);
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	free(text);
}

/* llm_tok_load_json on a C string. */
static llm_err load_str(const char *json, const char *name, llm_tok **t)
{
	return llm_tok_load_json(json, strlen(json), name, t);
}

/* Asserts a load failure with code and a detail containing what. */
static void expect_load_error(llm_err err, llm_err code, const char *what)
{
	assert_int_equal(err, code);
	if (!strstr(llm_last_error(), what))
		fail_msg("detail \"%s\" does not mention \"%s\"", llm_last_error(), what);
}

/* --- BPE -------------------------------------------------------------------- */

#define ABC_VOCAB "{\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5}"

static void test_bpe_merges_lowest_rank_first(void **state)
{
	/* "b c" has rank 0: a|b|c -> a|bc, and there is no "a bc" merge. */
	llm_tok *t = load_json("{\"model\": {\"type\": \"BPE\", \"vocab\": " ABC_VOCAB
			       ", \"merges\": [\"b c\", \"a b\", \"ab c\"]}}");

	(void)state;
	EXPECT(t, "abc", false, 0, 4);
	llm_tok_destroy(t);
	/* "a b" first: a|b|c -> ab|c -> abc. */
	t = load_json("{\"model\": {\"type\": \"BPE\", \"vocab\": " ABC_VOCAB
		      ", \"merges\": [[\"a\", \"b\"], [\"b\", \"c\"], [\"ab\", \"c\"]]}}");
	EXPECT(t, "abc", false, 5);
	llm_tok_destroy(t);
}

static void test_bpe_equal_ranks_merge_leftmost(void **state)
{
	llm_tok *t = load_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1}, "
			       "\"merges\": [\"a a\"]}}");

	(void)state;
	EXPECT(t, "aaa", false, 1, 0);
	EXPECT(t, "aaaa", false, 1, 1);
	llm_tok_destroy(t);
}

static void test_bpe_ignore_merges_takes_whole_words(void **state)
{
	llm_tok *t = load_json(
		"{\"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": " ABC_VOCAB
		", \"merges\": []}}");

	(void)state;
	EXPECT(t, "abc", false, 5);
	EXPECT(t, "ba", false, 1, 0);
	llm_tok_destroy(t);
}

#define SP_JSON(extra)                                                                            \
	"{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", " extra ", \"vocab\": "        \
	"{\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"\\u2581\": 3, \"a\": 4, \"\\u2581a\": 5, "     \
	"\"<0xC3>\": 6, \"<0xA9>\": 7}, \"merges\": [\"\\u2581 a\"]}, "                           \
	"\"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"special\": true, "                \
	"\"normalized\": false}], "                                                               \
	"\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "     \
	"\"prepend\": \"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "   \
	"\"content\": \"\\u2581\"}]}, "                                                           \
	"\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", "           \
	"\"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"}, {\"type\": "                \
	"\"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", "     \
	"\"start\": 1, \"stop\": 0}]}, "                                                          \
	"\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": " \
	"{\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "  \
	"\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}}}"

static void test_sentencepiece_prepends_and_replaces_spaces(void **state)
{
	llm_tok *t = load_json(SP_JSON("\"byte_fallback\": true"));
	const uint32_t ids[] = {1, 5, 5};

	(void)state;
	/* "a a" -> "▁a▁a" -> ▁a ▁a, after <s> */
	EXPECT(t, "a a", true, 1, 5, 5);
	EXPECT(t, "a a", false, 5, 5);
	expect_decode(t, ids, 3, true, "a a");
	expect_decode(t, ids, 3, false, "<s> a a"); /* Strip sees "<s>" first */
	llm_tok_destroy(t);
}

static void test_sentencepiece_byte_fallback(void **state)
{
	llm_tok *t = load_json(SP_JSON("\"byte_fallback\": true"));
	const uint32_t ids[] = {3, 6, 7}, bad[] = {3, 6};

	(void)state;
	/* é is not in the vocabulary: its UTF-8 bytes C3 A9 */
	EXPECT(t, "\xC3\xA9", false, 3, 6, 7);
	expect_decode(t, ids, 3, true, "\xC3\xA9");
	/* a lone C3 byte token is not UTF-8: one U+FFFD per byte */
	expect_decode(t, bad, 2, true, "\xEF\xBF\xBD");
	llm_tok_destroy(t);
}

static void test_unknowns_fuse_only_with_fuse_unk(void **state)
{
	llm_tok *t = load_json(SP_JSON("\"fuse_unk\": true"));

	(void)state;
	/* ▁ x y a: x and y are unknown (no byte fallback) */
	EXPECT(t, "xya", false, 3, 0, 4);
	llm_tok_destroy(t);
	t = load_json(SP_JSON("\"fuse_unk\": false"));
	EXPECT(t, "xya", false, 3, 0, 0, 4);
	llm_tok_destroy(t);
}

static void test_added_tokens_are_matched_before_normalisation(void **state)
{
	llm_tok *t = load_json(SP_JSON("\"byte_fallback\": true"));
	const uint32_t ids[] = {5, 1, 5};

	(void)state;
	/* each segment around <s> is normalised on its own: ▁a <s> ▁a */
	EXPECT(t, "a<s>a", false, 5, 1, 5);
	expect_decode(t, ids, 3, true, "a a");
	llm_tok_destroy(t);
}

static void test_normalized_added_tokens_match_normalized_text(void **state)
{
	llm_tok *t = load_json(
		"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"say\": 1}}, "
		"\"added_tokens\": [{\"id\": 2, \"content\": \"HeLLo\", \"special\": false, "
		"\"normalized\": true}], \"normalizer\": {\"type\": \"Lowercase\"}, "
		"\"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}");
	const uint32_t ids[] = {1, 2};

	(void)state;
	/* the token is lowercased like the text, and decodes lowercased (as HF) */
	EXPECT(t, "SAY HELLO", false, 1, 2);
	EXPECT(t, "sayhello", false, 1, 2); /* matched inside words too */
	expect_decode(t, ids, 2, false, "say hello");
	llm_tok_destroy(t);
}

/* --- pre-tokenizers -------------------------------------------------------- */

#define GPT2_RE                                             \
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| " \
	"?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|"       \
	"\\\\s+"
#define LLAMA3_RE                                                                              \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| " \
	"?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"
#define SPLIT_JSON(re)                                                                    \
	"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "        \
	"\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"" re "\"}, " \
	"\"behavior\": \"Isolated\", \"invert\": false}}"

static void expect_pieces(const llm_tok *t, const char *text, const char *const *want, size_t n)
{
	struct tok_list l;

	llm_tok_list_init(&l);
	assert_int_equal(llm_tok_pretokenize(t, text, strlen(text), true, &l), LLM_OK);
	assert_int_equal(l.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(l.items[i].len, strlen(want[i]));
		assert_memory_equal(llm_buf_str(&l.text) + l.items[i].off, want[i],
				    strlen(want[i]));
	}
	llm_tok_list_free(&l);
}

static void test_gpt2_pattern_splits(void **state)
{
	llm_tok *t = load_json(SPLIT_JSON(GPT2_RE));
	/* two spaces before "here": the first stands alone ("\s+(?!\S)") */
	const char *const want[] = {"I", "'m", " ", " here", " 123", "abc", "!!", "\n\n", " x"};

	(void)state;
	expect_pieces(t, "I'm  here 123abc!!\n\n x", want, 9);
	llm_tok_destroy(t);
}

static void test_llama3_pattern_splits(void **state)
{
	llm_tok *t = load_json(SPLIT_JSON(LLAMA3_RE));
	/* case-insensitive contractions, digits in threes, line breaks kept */
	const char *const want[] = {"I",      "'M",	  " ", "123",	"45",
				    " hello", "\r\n\r\n", " ", " world"};
	const char *const want2[] = {"(hello", " x", ".\n\n"};

	(void)state;
	expect_pieces(t, "I'M 12345 hello\r\n\r\n  world", want, 9);
	expect_pieces(t, "(hello x.\n\n", want2, 3);
	llm_tok_destroy(t);
}

static void test_byte_level_alphabet_round_trips(void **state)
{
	(void)state;
	assert_int_equal(llm_tok_byte_to_cp(' '), 0x120); /* Ġ */
	assert_int_equal(llm_tok_byte_to_cp('A'), 'A');
	assert_int_equal(llm_tok_byte_to_cp(0), 0x100);
	for (unsigned b = 0; b < 256; b++)
		assert_int_equal(llm_tok_cp_to_byte(llm_tok_byte_to_cp((unsigned char)b)), (int)b);
	assert_int_equal(llm_tok_cp_to_byte(0x200), -1);
}

/* --- WordPiece ---------------------------------------------------------------- */

static const char bert_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\n"
				 "hello\n,\n!\n";

static void test_wordpiece_bert_vocab(void **state)
{
	llm_tok *t;
	const uint32_t ids[] = {2, 5, 6, 7, 9, 8, 10, 3};

	(void)state;
	assert_int_equal(llm_tok_load(write_tmp("vocab.txt", bert_vocab, strlen(bert_vocab)), &t),
			 LLM_OK);
	/* lowercased, accents stripped, punctuation split, ## continuations */
	EXPECT(t, "UnAffáble, HELLO!", true, 2, 5, 6, 7, 9, 8, 10, 3);
	expect_decode(t, ids, 8, true, "unaffable, hello!");
	expect_decode(t, ids, 8, false, "[CLS] unaffable, hello! [SEP]");
	/* no split of "unx" works: the whole word is [UNK]; CJK chars stand alone */
	EXPECT(t, "unx hello", false, 1, 8);
	EXPECT(t, "\xE4\xB8\xAD\xE6\x96\x87", false, 1, 1);
	/* the special tokens are matched in the raw text */
	EXPECT(t, "hello[SEP]", false, 8, 3);
	llm_tok_destroy(t);
}

static void test_wordpiece_long_words_are_unknown(void **state)
{
	llm_tok *t;
	char word[102];

	(void)state;
	assert_int_equal(llm_tok_load(write_tmp("vocab.txt", bert_vocab, strlen(bert_vocab)), &t),
			 LLM_OK);
	memset(word, 'a', 101);
	word[101] = '\0';
	EXPECT(t, word, false, 1);
	llm_tok_destroy(t);
}

static void test_bert_normalizer_cleans_text(void **state)
{
	llm_tok *t;

	(void)state;
	assert_int_equal(llm_tok_load(write_tmp("vocab.txt", bert_vocab, strlen(bert_vocab)), &t),
			 LLM_OK);
	/* control characters vanish, NBSP and tabs are spaces */
	EXPECT(t, "hel\x01lo\xC2\xA0\thello\x0B", false, 8, 8);
	llm_tok_destroy(t);
}

/* --- GPT-2 files and invalid UTF-8 -------------------------------------------------- */

static void test_gpt2_files_and_invalid_utf8(void **state)
{
	static const char vocab[] =
		"{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 4, "
		"\"\\u00ef\": 5, \"\\u00bf\": 6, \"\\u00bd\": 7}";
	static const char merges[] = "#version: 0.2\na b\n\xC4\xA0 ab\n";
	llm_tok *t;
	const char *v = write_tmp("vocab.json", vocab, strlen(vocab));
	const uint32_t ids[] = {2, 4};

	(void)state;
	assert_int_equal(
		llm_tok_load_bpe_files(v, write_tmp("merges.txt", merges, strlen(merges)), &t),
		LLM_OK);
	/* "ab ab": pieces "ab" and " ab" -> "Ġab" after the merges a b, Ġ ab */
	EXPECT(t, "ab ab", false, 2, 4);
	expect_decode(t, ids, 2, false, "ab ab");
	/* 0xFF is repaired to U+FFFD = EF BF BD, the byte symbols ï ¿ ½ */
	EXPECT(t, "\xFF", false, 5, 6, 7);
	llm_tok_destroy(t);
}

static void test_decode_skips_unknown_ids(void **state)
{
	llm_tok *t = load_json("{\"model\": {\"type\": \"BPE\", \"vocab\": " ABC_VOCAB
			       ", \"merges\": []}}");
	const uint32_t ids[] = {0, 999, 1};

	(void)state;
	/* no decoder: tokens joined by spaces */
	expect_decode(t, ids, 3, false, "a b");
	llm_tok_destroy(t);
}

static void test_lookups(void **state)
{
	llm_tok *t = load_json(SP_JSON("\"byte_fallback\": true"));
	uint32_t id;
	size_t len;
	const char *s;

	(void)state;
	/* ids 0..7: one more than the largest */
	assert_int_equal(llm_tok_vocab_size(t), 8);
	assert_true(llm_tok_token_to_id(t, "<s>", 3, &id));
	assert_int_equal(id, 1);
	assert_false(llm_tok_token_to_id(t, "zz", 2, &id));
	s = llm_tok_id_to_token(t, 6, &len);
	assert_non_null(s);
	assert_memory_equal(s, "<0xC3>", 6);
	assert_int_equal(len, 6);
	assert_null(llm_tok_id_to_token(t, 8, &len));
	llm_tok_destroy(t);
}

/* --- malformed files ---------------------------------------------------------------- */

static void test_broken_json_names_file_and_position(void **state)
{
	llm_tok *t;

	(void)state;
	expect_load_error(llm_tok_load(write_tmp("tokenizer.json", "{\"model\": {", 11), &t),
			  LLM_EPARSE, "tokenizer.json:1:");
	assert_null(t);
}

static void test_truncated_tokenizer_json(void **state)
{
	static const char text[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\"";
	llm_tok *t;

	(void)state;
	expect_load_error(llm_tok_load(write_tmp("tokenizer.json", text, strlen(text)), &t),
			  LLM_EPARSE, "tokenizer.json");
}

static void test_merge_with_unknown_token(void **state)
{
	llm_tok *t;

	(void)state;
	expect_load_error(load_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
				   "\"merges\": [\"a z\"]}}",
				   "bad.json", &t),
			  LLM_EPARSE, "bad.json: merge 1");
	expect_load_error(load_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
				   "\"merges\": [\"a a\"]}}",
				   "bad.json", &t),
			  LLM_EPARSE, "\"aa\" is not in the vocabulary");
}

static void test_bad_merges_txt_line(void **state)
{
	static const char vocab[] = "{\"a\": 0, \"b\": 1, \"ab\": 2}";
	llm_tok *t;
	const char *v = write_tmp("vocab.json", vocab, strlen(vocab));

	(void)state;
	expect_load_error(
		llm_tok_load_bpe_files(v, write_tmp("merges.txt", "a b\na b c\n", 10), &t),
		LLM_EPARSE, "merges.txt:2:");
}

static void test_bad_vocab_lines(void **state)
{
	llm_tok *t;
	char *big = malloc(LLM_TOK_MAX_TOKEN_LEN + 10);

	(void)state;
	expect_load_error(llm_tok_load(write_tmp("vocab.txt", "[UNK]\n\xFF\xFE\n", 9), &t),
			  LLM_EPARSE, "not valid UTF-8");
	memset(big, 'x', LLM_TOK_MAX_TOKEN_LEN + 10);
	expect_load_error(llm_tok_load(write_tmp("vocab.txt", big, LLM_TOK_MAX_TOKEN_LEN + 10), &t),
			  LLM_ETOOLARGE, "vocab.txt:1:");
	free(big);
	expect_load_error(llm_tok_load(write_tmp("vocab.txt", "a\nb\n", 4), &t), LLM_EPARSE,
			  "[UNK], [CLS] or [SEP] is missing");
	expect_load_error(load_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, "
				   "\"merges\": []}}",
				   "neg.json", &t),
			  LLM_EPARSE, "neg.json: vocab entry");
}

static void test_unsupported_components(void **state)
{
	llm_tok *t;

	(void)state;
	expect_load_error(
		load_str("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "u.json", &t),
		LLM_EUNSUPPORTED, "model type \"Unigram\"");
	expect_load_error(llm_tok_load_json(SPLIT_JSON("\\\\w+"), strlen(SPLIT_JSON("\\\\w+")),
					    "re.json", &t),
			  LLM_EUNSUPPORTED, "re.json: Split pattern");
}

static void test_files_over_the_cap(void **state)
{
	char path[256];
	FILE *f;
	llm_tok *t;

	(void)state;
	snprintf(path, sizeof(path), "%s/huge.json", tmpdir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), (off_t)LLM_TOK_MAX_FILE + 1), 0);
	fclose(f);
	expect_load_error(llm_tok_load(path, &t), LLM_ETOOLARGE, "huge.json");
	unlink(path);
}

static void test_missing_files(void **state)
{
	llm_tok *t;

	(void)state;
	expect_load_error(llm_tok_load("/nonexistent/tokenizer.json", &t), LLM_ENOTFOUND,
			  "/nonexistent/tokenizer.json");
	char empty[128];

	snprintf(empty, sizeof(empty), "%s/empty", tmpdir);
	assert_int_equal(mkdir(empty, 0700), 0);
	expect_load_error(llm_tok_load(empty, &t), LLM_ENOTFOUND, "no tokenizer.json");
}

static void test_text_over_the_cap(void **state)
{
	llm_tok *t = load_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": "
			       "[]}}");
	uint32_t *ids;
	size_t n;

	(void)state;
	/* the length is checked before the text is read */
	assert_int_equal(llm_tok_encode(t, "a", LLM_TOK_MAX_TEXT + 1, false, &ids, &n),
			 LLM_ETOOLARGE);
	assert_null(ids);
	llm_tok_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bpe_merges_lowest_rank_first),
		cmocka_unit_test(test_bpe_equal_ranks_merge_leftmost),
		cmocka_unit_test(test_bpe_ignore_merges_takes_whole_words),
		cmocka_unit_test(test_sentencepiece_prepends_and_replaces_spaces),
		cmocka_unit_test(test_sentencepiece_byte_fallback),
		cmocka_unit_test(test_unknowns_fuse_only_with_fuse_unk),
		cmocka_unit_test(test_added_tokens_are_matched_before_normalisation),
		cmocka_unit_test(test_normalized_added_tokens_match_normalized_text),
		cmocka_unit_test(test_gpt2_pattern_splits),
		cmocka_unit_test(test_llama3_pattern_splits),
		cmocka_unit_test(test_byte_level_alphabet_round_trips),
		cmocka_unit_test(test_wordpiece_bert_vocab),
		cmocka_unit_test(test_wordpiece_long_words_are_unknown),
		cmocka_unit_test(test_bert_normalizer_cleans_text),
		cmocka_unit_test(test_gpt2_files_and_invalid_utf8),
		cmocka_unit_test(test_decode_skips_unknown_ids),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_broken_json_names_file_and_position),
		cmocka_unit_test(test_truncated_tokenizer_json),
		cmocka_unit_test(test_merge_with_unknown_token),
		cmocka_unit_test(test_bad_merges_txt_line),
		cmocka_unit_test(test_bad_vocab_lines),
		cmocka_unit_test(test_unsupported_components),
		cmocka_unit_test(test_files_over_the_cap),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_text_over_the_cap),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
