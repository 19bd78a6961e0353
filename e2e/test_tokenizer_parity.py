"""Parity of the C tokenizers (lib/llm_tokenizer*.c, through tok_dump) with
Hugging Face `tokenizers`: identical ids and identical decoded text on a
deterministic multilingual corpus of more than 1 MB, for GPT-2 byte-level
BPE, SentencePiece-style BPE (two variants), WordPiece trained here, the
real all-MiniLM-L6-v2 tokenizer (tokenizer.json and vocab.txt) and a
Llama-3-style BPE trained here. Needs no cluster: only `make all`."""

import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from tokenizers import (AddedToken, BertWordPieceTokenizer, ByteLevelBPETokenizer, Regex,
                        Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

ROOT = Path(os.environ.get("LLMOPS_ROOT") or Path(__file__).resolve().parent.parent)
TOK_DUMP = ROOT / "build/tests/tokenizer/tok_dump"
GPT2 = ROOT / "build/assets/gpt2"
MINILM = ROOT / "build/assets/all-MiniLM-L6-v2"
CORPUS_BYTES = 1 << 20
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

FRAGMENTS = [
    # Latin with accents, contractions in several cases
    "Héllo wörld, ça va? Naïve café façade — déjà vu, São Paulo, Zürich, Ærøskøbing.",
    "I'm sure you've seen it; they'll say we'd won. DON'T SHOUT, it'S fine, We'Re here!",
    "Ñandú, pingüino, acción, Łódź, Dvořák, Kraków, İstanbul, straße, ĳssel, œuvre.",
    "e\u0301 a\u0300 o\u0308 combining marks; ﬁ ﬂ ligatures; Ⅻ ⅓ ² numbers",
    # Cyrillic, Greek
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка, ЁЖИК!",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Αλφάβητο: ΑΒΓΔ αβγδ, ά έ ή ί ϊ ΐ.",
    # CJK, Korean, Japanese
    "我能吞下玻璃而不伤身体。中华人民共和国成立于1949年，人口约14亿。",
    "日本語のテキスト、カタカナとひらがな。東京は大きい都市です。ｱｲｳｴｵ（全角）",
    "한국어 문장입니다. 안녕하세요, 세계! 훈민정음",
    # Arabic, Hebrew, Hindi, Thai
    "العربية لغة جميلة. مرحبا بالعالم! ١٢٣ ٤٥٦",
    "עברית: שלום עולם, מה שלומך?",
    "हिन्दी भाषा में लिखा गया वाक्य। नमस्ते दुनिया! १२३४",
    "ภาษาไทย สวัสดีชาวโลก ๑๒๓",
    # emoji, ZWJ sequences, flags, skin tones, variation selectors
    "Emoji: 😀😃😄 👨‍👩‍👧‍👦 family, 👩🏽‍💻 coder, 🏳️‍🌈 flag, 🇫🇷🇯🇵 flags, ❤️ ✨ 🥰 👍🏿",
    # code
    "def f(x):\n\treturn {'a': x ** 2, \"b\": [1, 2, 3]}  # comment\n",
    "for (int i = 0; i < n; i++) { buf[i] = (char)(i & 0xFF); } // C++\r\n",
    "SELECT id, name FROM users WHERE age >= 21 AND email LIKE '%@example.com';",
    "<div class=\"x\">&amp; &lt;tag&gt;</div> https://example.com/a?b=c&d=e#f",
    # numbers
    "3.14159 2,718,281 1e-10 0x1F 12345678901234567890 -42 +7 $1,000.00 €5 ¥300 50%",
    # whitespace
    "tabs\tand\t\ttabs   and    spaces\n\n\nnewlines\r\n\r\nCRLF  \u00a0nbsp\u3000ideographic",
    "   leading spaces and trailing spaces     ",
    "punctuation!!! ??? ... --- ((( ))) [[[ ]]] {{{ }}} ''' \"\"\" ``` ~~~ @@@ ###",
    "mixed123abc 456def ABC-DEF_ghi.jkl/mno\\pqr 'quoted' \"double\" ‘curly’ “curly”",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿÀÉÎÕÜßĀāĒēĪīŌōŪū",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙ",
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘ",
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह",
    "0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗🙂🤗🤩🤔",
]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", "   ", "\u00a0", "\u3000", " \t "]


def make_corpus(seed=1234):
    """Deterministic documents (str) totalling at least CORPUS_BYTES of UTF-8."""
    rng = random.Random(seed)
    docs, total = [], 0
    while total < CORPUS_BYTES:
        parts = []
        for _ in range(rng.randint(5, 40)):
            if rng.random() < 0.5:
                parts.append(rng.choice(FRAGMENTS))
            else:
                pool = rng.choice(POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
            parts.append(rng.choice(SEPARATORS))
        doc = "".join(parts)
        if rng.random() < 0.1:
            doc = rng.choice(SEPARATORS) + doc
        docs.append(doc)
        total += len(doc.encode())
    docs += ["", " ", "a", "\n", "'s", "x" * 150, "é" * 120, "ab" * 3000]
    return docs


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


@pytest.fixture(scope="module")
def docs_file(corpus, tmp_path_factory):
    return write_docs(tmp_path_factory.mktemp("corpus") / "docs.bin", corpus)


def c_dump(docs_file, args, special, keep_special=False):
    assert TOK_DUMP.exists(), f"{TOK_DUMP} is missing: run `make all`"
    cmd = [str(TOK_DUMP)] + (["--special"] if special else []) + \
        (["--keep-special"] if keep_special else []) + [str(a) for a in args]
    with open(docs_file, "rb") as f:
        out = subprocess.run(cmd, stdin=f, capture_output=True, check=True, timeout=120)
    # split on "\n" only: decoded text may hold U+2028 or U+0085, which splitlines() cuts at
    return [json.loads(line) for line in out.stdout.split(b"\n") if line]


def write_docs(path, docs):
    with open(path, "wb") as f:
        for d in docs:
            f.write(b"%d\n" % len(d.encode()) + d.encode())
    return path


def check_parity(name, hf, corpus, docs_file, args, special=False, round_trip=True,
                 keep_special=False):
    ours = c_dump(docs_file, args, special, keep_special)
    assert len(ours) == len(corpus), f"{name}: tok_dump printed {len(ours)} documents"
    encs = hf.encode_batch(corpus, add_special_tokens=special)
    hf_dec = hf.decode_batch([e.ids for e in encs], skip_special_tokens=not keep_special)
    ntok = 0
    for i, (doc, enc, mine, dec) in enumerate(zip(corpus, encs, ours, hf_dec)):
        ntok += len(enc.ids)
        if mine["ids"] != enc.ids:
            k = next((k for k, (a, b) in enumerate(zip(mine["ids"], enc.ids)) if a != b),
                     min(len(mine["ids"]), len(enc.ids)))
            off = enc.offsets[k][0] if k < len(enc.offsets) else len(doc)
            pytest.fail(f"{name}: document {i}, token {k}, text offset {off} "
                        f"({doc[max(0, off - 20):off + 20]!r}): ours "
                        f"{mine['ids'][k:k + 8]} hf {enc.ids[k:k + 8]} "
                        f"(hf tokens {enc.tokens[k:k + 8]})")
        assert mine["decoded"] == dec, f"{name}: document {i}: decode differs"
        if round_trip:
            assert dec == doc, f"{name}: document {i}: decode is not the original text"
    print(f"{name}: {len(corpus)} documents, {sum(len(d.encode()) for d in corpus)} bytes, "
          f"{ntok} tokens: identical")


def test_corpus_is_large_and_mixed(corpus):
    text = "".join(corpus)
    assert len(text.encode()) >= CORPUS_BYTES
    for probe in ["é", "ё", "λ", "中", "한", "ع", "ह", "‍", "\t", "\r\n", "'ll", "0x1F"]:
        assert probe in text


def test_gpt2_bytelevel_bpe(corpus, docs_file, tmp_path):
    hf = ByteLevelBPETokenizer(str(GPT2 / "encoder.json"), str(GPT2 / "vocab.bpe"))
    check_parity("gpt2", hf, corpus, docs_file,
                 ["--bpe", GPT2 / "encoder.json", GPT2 / "vocab.bpe"])
    docs = corpus[:50]
    check_parity("gpt2 directory", hf, docs, write_docs(tmp_path / "docs.bin", docs), [GPT2])
    # as tokenizer.json, in the hub's spelling ("" for no prefix or suffix)
    spec = json.loads(hf.to_str())
    spec["model"].update(continuing_subword_prefix="", end_of_word_suffix="")
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    check_parity("gpt2 tokenizer.json", Tokenizer.from_file(str(tmp_path / "tokenizer.json")),
                 docs, tmp_path / "docs.bin", [tmp_path / "tokenizer.json"])


def train_sentencepiece_bpe(corpus, path, metaspace):
    """A Llama-2-style tokenizer.json: byte fallback, fused <unk>, <s> prefix."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=6000, limit_alphabet=200,
                                  special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus, trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    if not metaspace:
        spec["pre_tokenizer"] = None
        spec["normalizer"] = json.loads(normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]).__getstate__())
    tok = Tokenizer.from_str(json.dumps(spec))
    if metaspace:
        tok.decoder = decoders.Sequence([decoders.Metaspace(prepend_scheme="first"),
                                         decoders.ByteFallback(), decoders.Fuse()])
    else:
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.save(str(path))
    return Tokenizer.from_file(str(path))


@pytest.mark.parametrize("metaspace", [False, True], ids=["prepend-replace", "metaspace"])
def test_sentencepiece_bpe(corpus, docs_file, tmp_path, metaspace):
    path = tmp_path / "tokenizer.json"
    hf = train_sentencepiece_bpe(corpus, path, metaspace)
    name = f"sentencepiece-bpe-{'metaspace' if metaspace else 'prepend'}"
    check_parity(name, hf, corpus, docs_file, [path], special=True, round_trip=not metaspace)
    docs = corpus[:100] + ["a<s>b", " <s> </s>x"]
    check_parity(name + " keeping <s>", hf, docs, write_docs(tmp_path / "docs.bin", docs), [path],
                 special=True, round_trip=False, keep_special=True)


def test_wordpiece_trained(corpus, docs_file, tmp_path):
    tok = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    tok.train_from_iterator(corpus, vocab_size=5000, limit_alphabet=300)
    tok.save_model(str(tmp_path))
    tok.save(str(tmp_path / "tokenizer.json"))
    hf = BertWordPieceTokenizer(str(tmp_path / "vocab.txt"), lowercase=True, strip_accents=True)
    check_parity("wordpiece-vocab.txt", hf, corpus, docs_file,
                 ["--wordpiece", tmp_path / "vocab.txt"], special=True, round_trip=False)
    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    check_parity("wordpiece-tokenizer.json", hf, corpus, docs_file,
                 [tmp_path / "tokenizer.json"], special=True, round_trip=False)


def test_minilm(corpus, docs_file):
    hf = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    check_parity("all-MiniLM-L6-v2 tokenizer.json", hf, corpus, docs_file,
                 [MINILM / "tokenizer.json"], special=True, round_trip=False)
    hf = BertWordPieceTokenizer(str(MINILM / "vocab.txt"), lowercase=True)
    check_parity("all-MiniLM-L6-v2 vocab.txt", hf, corpus, docs_file,
                 ["--wordpiece", MINILM / "vocab.txt"], special=True, round_trip=False)


def test_llama3_style_bpe(corpus, docs_file, tmp_path):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"])
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken("<tool>", special=False, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    tok.save(str(tmp_path / "tokenizer.json"))
    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    check_parity("llama3-style", hf, corpus, docs_file, [tmp_path / "tokenizer.json"],
                 special=True)
    docs = ["a<|end_of_text|>b <tool> c", "<tool><tool>", "x <|begin_of_text|>"]
    for keep in (False, True):
        check_parity("llama3-style added tokens", hf, docs,
                     write_docs(tmp_path / "special.bin", docs), [tmp_path / "tokenizer.json"],
                     special=True, round_trip=False, keep_special=keep)


def test_added_tokens_normalized_and_stripped(corpus, tmp_path):
    """Added tokens in all-MiniLM-L6-v2: normalised ones are matched after
    lowercasing and accent stripping; lstrip/rstrip swallow whitespace."""
    hf = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    hf.add_tokens([AddedToken("HeLLo", normalized=True), AddedToken("wörld", normalized=True),
                   AddedToken("[X]", normalized=False, lstrip=True, rstrip=True)])
    hf.save(str(tmp_path / "tokenizer.json"))
    rng = random.Random(5)
    docs = []
    for d in corpus[:150]:
        words = d.split(" ")
        for _ in range(5):
            words.insert(rng.randrange(len(words) + 1),
                         rng.choice(["HeLLo", "hello", "WÖRLD", " [X] ", "[X]", "\t[X]\n",
                                     "\u3000[X]\u00a0"]))
        docs.append(" ".join(words))
    for keep in (False, True):
        check_parity("all-MiniLM-L6-v2 added tokens", hf, docs,
                     write_docs(tmp_path / "docs.bin", docs), [tmp_path / "tokenizer.json"],
                     special=True, round_trip=False, keep_special=keep)
