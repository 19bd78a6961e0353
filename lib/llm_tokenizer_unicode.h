/* Unicode helpers for the tokenizers: UTF-8 decoding and encoding, lossy
 * repair of invalid UTF-8, and the character classes, lowercase mapping and
 * canonical decomposition the pre-tokenizers and normalizers need.
 *
 * The data comes from lib/llm_unicode_tables.h (generated from Python's
 * unicodedata; llm_tok_u_version() names the Unicode version). Limit: NFD is
 * per code point without canonical reordering of combining marks. */
#ifndef LLM_TOKENIZER_UNICODE_H
#define LLM_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_buf.h"
#include "llm_err.h"

#define LLM_TOK_U_REPLACEMENT 0xFFFDu

/* The Unicode version of the tables ("15.1.0"; the BERT classes, Mn,
 * punctuation and other, are older: see lib/gen_unicode_tables.py). */
const char *llm_tok_u_version(void);

/* Decodes the code point at s[*i] (n bytes in all) and advances *i. An
 * invalid sequence gives U+FFFD and advances past its maximal subpart (the
 * policy of Python's errors="replace" and Rust's from_utf8_lossy). */
uint32_t llm_tok_u_next(const char *s, size_t n, size_t *i);

/* Writes cp as UTF-8 into out (4 bytes room); returns the byte count. */
size_t llm_tok_u_put(uint32_t cp, char *out);

/* Appends cp as UTF-8 to b. */
llm_err llm_tok_u_append(llm_buf *b, uint32_t cp);

/* Appends s (n bytes) to b with every invalid sequence replaced by U+FFFD. */
llm_err llm_tok_u_append_lossy(llm_buf *b, const char *s, size_t n);

/* True when s (n bytes) is valid UTF-8. */
bool llm_tok_u_valid(const char *s, size_t n);

bool llm_tok_u_is_letter(uint32_t cp);	/* \p{L} */
bool llm_tok_u_is_number(uint32_t cp);	/* \p{N} */
bool llm_tok_u_is_space(uint32_t cp);	/* White_Space: regex \s */
bool llm_tok_u_is_mn(uint32_t cp);	/* nonspacing mark */
bool llm_tok_u_is_punct(uint32_t cp);	/* P* or ASCII punctuation */
bool llm_tok_u_is_other(uint32_t cp);	/* Cc, Cf or Co */
bool llm_tok_u_is_chinese(uint32_t cp); /* CJK ideograph blocks, as BERT */

/* Full lowercase of cp into out (room for 3); returns the count (1..3). */
size_t llm_tok_u_lower(uint32_t cp, uint32_t *out);

/* Canonical decomposition of cp into out (room for 4); returns the count. */
size_t llm_tok_u_nfd(uint32_t cp, uint32_t *out);

#endif
