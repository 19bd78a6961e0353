#!/usr/bin/env bash
# Writes seed inputs for a tokenizer fuzz harness into a corpus directory
# (idempotent): small but complete examples of every supported file kind.
#   tests/fuzz/seeds.sh fuzz_tokenizer_load|fuzz_tokenizer_encode DIR
set -euo pipefail
name=$1
dir=$2
seed() { printf '%b' "$2" >"$dir/seed-$1"; }

if [ "$name" = fuzz_tokenizer_encode ]; then
	seed text "Hello world, I'm here!\n\tTabs  and   spaces"
	seed multi "Съешь 中文 한국어 हिन्दी العربية 😀👨\xe2\x80\x8d👩 ñ e\xcc\x81"
	seed bytes "\xff\xfe ab\xc3 \xe2\x82 x\xf0\x9f\x98"
	seed code "def f(x):\r\n    return x**2  # 12345"
	exit 0
fi
# 0: tokenizer.json (BPE, byte-level), 3: tokenizer.json (WordPiece + BERT)
seed json-bpe '\x00{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"<unk>":3,"<0x41>":4,"\\u2581":5},"merges":["a b"],"unk_token":"<unk>","byte_fallback":true,"fuse_unk":true},"added_tokens":[{"id":6,"content":"<s>","special":true,"lstrip":false,"rstrip":false,"single_word":false,"normalized":false}],"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\\u2581"},{"type":"Replace","pattern":{"String":" "},"content":"\\u2581"}]},"pre_tokenizer":null,"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\\u2581"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[6],"tokens":["<s>"]}}}}'
seed json-bytelevel '\x00{"model":{"type":"BPE","vocab":{"H":0,"e":1,"He":2,"\\u0120":3,"l":4},"merges":[["H","e"]],"ignore_merges":true},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'"'"'s|'"'"'t|'"'"'re|'"'"'ve|'"'"'m|'"'"'ll|'"'"'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},"decoder":{"type":"ByteLevel"},"post_processor":{"type":"ByteLevel"}}'
seed json-wordpiece '\x03{"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"hello":3,"##lo":4,"hel":5}},"added_tokens":[{"id":1,"content":"[CLS]","special":true,"normalized":false},{"id":2,"content":"[SEP]","special":true,"normalized":false}],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]},"decoder":{"type":"WordPiece","prefix":"##","cleanup":true}}'
seed json-metaspace '\x00{"model":{"type":"BPE","vocab":{"\\u2581":0,"a":1,"\\u2581a":2},"merges":["\\u2581 a"]},"pre_tokenizer":{"type":"Metaspace","replacement":"\\u2581","prepend_scheme":"first","split":true},"decoder":{"type":"Metaspace","replacement":"\\u2581","prepend_scheme":"first"}}'
seed vocab-txt '\x01[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##lo\nhel\n,\nworld\n'
seed gpt2-files '\x02{"a": 0, "b": 1, "ab": 2, "\\u0120": 3, "\\u0120a": 4}\x00#version: 0.2\na b\n\xc4\xa0 a\n'
