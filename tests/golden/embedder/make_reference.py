#!/usr/bin/env python3
"""Reference outputs for tests/unit/test_embedder.c (kernels/models/bert.c).

1. tiny/: a small random BertModel (2 layers, hidden 64, 4 heads, FFN 128,
   vocabulary 320, 64 positions, fp32, fixed seed) saved with save_pretrained,
   and its outputs for one right-padded batch of three sequences of different
   lengths: the last hidden state and the mean-pooled, L2-normalised
   embeddings (sentence-transformers' Pooling + Normalize, written out here in
   torch so the tiny model needs no modules.json).
2. minilm/: all-MiniLM-L6-v2 from build/assets (offline) through
   sentence-transformers: 200 varied sentences, the token ids its own
   tokenizer produced (after truncation to max_seq_length) and its embeddings.

Run from the repository root with `make golden` (build/golden-venv).
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MINILM = os.path.join(ROOT, "build", "assets", "all-MiniLM-L6-v2")


def versions():
    import safetensors
    import sentence_transformers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def mean_pool_normalize(hidden, mask):
    """sentence-transformers Pooling(mean) then Normalize, in fp32."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(1)
    count = torch.clamp(m.sum(1), min=1e-9)
    return torch.nn.functional.normalize(summed / count, p=2, dim=1)


def make_tiny():
    from transformers import BertConfig, BertModel

    out = os.path.join(HERE, "tiny")
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    torch.manual_seed(1234)
    cfg = BertConfig(vocab_size=320, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64, type_vocab_size=2,
                     hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, attn_implementation="eager")
    model = BertModel(cfg, add_pooling_layer=True).eval().float()
    # The default init (std 0.02) gives near-constant outputs; larger weights
    # make the comparison sensitive to mistakes in every layer.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p) if name.endswith("weight")
                        else 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.save_pretrained(model_dir, safe_serialization=True)

    lengths = [17, 5, 11]
    T = max(lengths)
    g = torch.Generator().manual_seed(99)
    ids = torch.zeros((len(lengths), T), dtype=torch.long)
    mask = torch.zeros((len(lengths), T), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, cfg.vocab_size, (n,), generator=g)
        mask[b, :n] = 1
    ids[0, 1] = cfg.vocab_size - 1  # the last row of the table is reachable
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask,
                       token_type_ids=torch.zeros_like(ids)).last_hidden_state
        emb = mean_pool_normalize(hidden, mask)
    save_file({"last_hidden_state": hidden.numpy().astype(np.float32),
               "embeddings": emb.numpy().astype(np.float32)},
              os.path.join(out, "reference.safetensors"))
    ref = {"versions": versions(), "seed": 1234, "lengths": lengths,
           "input_ids": ids.tolist(), "hidden_size": cfg.hidden_size,
           "note": "positions >= lengths[b] are padding; only valid positions are compared"}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


def long_text(i):
    base = [
        "The committee reviewed every section of the proposal, asked for revised cost "
        "estimates, and postponed the vote until the auditors had finished their report",
        "In the early hours the fishing boats left the harbour one after another, their "
        "lights moving slowly across the dark water towards the open sea",
        "Distributed training splits each batch across many accelerators, synchronises "
        "gradients with an all-reduce, and checkpoints the optimizer state regularly",
    ]
    s = base[i % len(base)]
    return " ".join(f"({k + 1}) {s}." for k in range(6 + i))


def sentences():
    s = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "A woman is playing violin.",
        "Two men pushed carts through the woods.",
        "A man is riding a white horse on an enclosed ground.",
        "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.",
        "The new movie is awesome",
        "The cat sits outside",
        "The new movie is so great",
        "I love pasta",
        "Do you like pizza?",
        "What is the capital of France?",
        "Paris is the capital and most populous city of France.",
        "Berlin has a population of 3,850,809 inhabitants (2023).",
        "How many people live in Berlin?",
        "The quick brown fox jumps over the lazy dog.",
        "Hello, world!",
        "ok",
        "?",
        "...",
        "Yes.",
        "No!!!",
        "e = mc^2",
        "3.14159265358979",
        "Call me at +1 (555) 010-9999 before 5:30 p.m.",
        "The invoice #A-2024-0042 totals $1,299.99, due 2024-12-31.",
        "Version 2.3.1 fixes CVE-2023-12345 and improves throughput by 17%.",
        "GPU memory usage peaked at 78.5 GiB during the 7B fine-tune.",
        "Kubernetes reconciles the desired state with the observed state.",
        "The operator watches custom resources and creates deployments.",
        "Gradient descent minimises the loss by following the negative gradient.",
        "Attention is all you need.",
        "Transformers use self-attention to mix information across tokens.",
        "Photosynthesis converts light energy into chemical energy.",
        "The mitochondria is the powerhouse of the cell.",
        "Water boils at 100 degrees Celsius at sea level.",
        "The stock market fell sharply after the announcement.",
        "Interest rates were raised by 25 basis points.",
        "She scored twice in the second half to win the match.",
        "The orchestra performed Beethoven's Ninth Symphony.",
        "He forgot his umbrella and got soaked on the way home.",
        "Please remember to water the plants while I'm away.",
        "The train to Edinburgh is delayed by forty minutes.",
        "Mix the flour, sugar and eggs, then bake for 25 minutes at 180°C.",
        "My password must contain at least one digit & one symbol (e.g. #).",
        "\"Quoted text\", said the editor, 'should be consistent.'",
        "Semicolons; colons: dashes — and ellipses… all in one line.",
        "UPPERCASE TEXT SHOULD BE LOWERCASED BY THE TOKENIZER",
        "MiXeD CaSe WoRdS aNd CamelCaseIdentifiers",
        "snake_case_identifier and kebab-case-identifier",
        "https://example.com/path?query=1&other=two#fragment",
        "user@example.org wrote: see attached file report_final_v2.pdf",
        "def add(a, b): return a + b",
        "SELECT name, count(*) FROM users GROUP BY name;",
        "printf(\"%d\\n\", x);",
        "<html><body><p>Hello</p></body></html>",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "C'est la vie.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "El rápido zorro marrón salta sobre el perro perezoso.",
        "La volpe marrone veloce salta sopra il cane pigro.",
        "Быстрая коричневая лиса прыгает через ленивую собаку.",
        "敏捷的棕色狐狸跳过了懒狗。",
        "素早い茶色の狐が怠け者の犬を飛び越える。",
        "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
        "الثعلب البني السريع يقفز فوق الكلب الكسول",
        "Ο γρήγορος καφέ αλεπού πηδά πάνω από το τεμπέλικο σκυλί.",
        "Crème brûlée, naïve façade, jalapeño, Ångström.",
        "I love this! 😍🔥",
        "Party time 🎉🎉🎉 see you there 🥳",
        "🤖",
        "Weather today: ☀️ then 🌧️ later.",
        "The rocket 🚀 launched at 09:41 UTC.",
        "Tabs\tand\tnewlines\nin the\nmiddle.",
        "   leading and trailing spaces   ",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "supercalifragilisticexpialidocious",
        "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word.",
        "antidisestablishmentarianism",
        "I can't believe it's not butter.",
        "They're going to their house over there.",
        "It's raining cats and dogs.",
        "Better late than never.",
        "An apple a day keeps the doctor away.",
        "All that glitters is not gold.",
        "To be, or not to be, that is the question.",
        "Four score and seven years ago our fathers brought forth on this continent a new nation.",
        "The results were statistically significant (p < 0.001, n = 1,024).",
        "The patient was prescribed 500 mg of amoxicillin three times daily.",
        "Mount Everest is 8,849 metres tall.",
        "The Pacific Ocean covers about one third of the Earth's surface.",
        "Jupiter has at least 95 known moons.",
        "Light travels at roughly 299,792 kilometres per second.",
        "The library opens at 9 am and closes at 8 pm on weekdays.",
        "Our flight was cancelled, so we rebooked for Tuesday.",
        "The museum's new exhibition features Impressionist paintings.",
        "Customer support replied within two hours.",
        "This product broke after one week; very disappointed.",
        "Five stars: fast shipping, great quality, would buy again!",
        "How do I reset my router?",
        "Why is the sky blue?",
        "Where can I find a good coffee shop nearby?",
        "Which programming language should I learn first?",
        "When does the summer sale start?",
        "Who wrote Pride and Prejudice?",
        "Jane Austen wrote Pride and Prejudice in 1813.",
        "The treaty was signed in 1648, ending the Thirty Years' War.",
        "Neural networks approximate functions from data.",
        "Bananas are berries, but strawberries are not.",
        "The recipe calls for two cups of rice and three cups of water.",
        "Dogs are loyal companions.",
        "Cats are independent animals.",
        "Birds migrate south in the winter.",
        "The server returned HTTP 503 Service Unavailable.",
        "Error: segmentation fault (core dumped)",
        "WARNING: disk usage above 90% on /dev/sda1",
        "Compile with -O2 -Wall -Wextra and run the tests.",
        "The meeting has been moved to 3 pm on Thursday.",
        "Let's grab lunch tomorrow?",
        "lol that was so funny",
        "idk, maybe next time tbh",
        "Thx 4 the help!!",
        "brb",
        "The sun rises in the east and sets in the west.",
        "A journey of a thousand miles begins with a single step.",
        "The early bird catches the worm.",
        "Knowledge is power.",
        "Time flies like an arrow; fruit flies like a banana.",
        "Colorless green ideas sleep furiously.",
        "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo.",
        "The horse raced past the barn fell.",
        "Every cloud has a silver lining.",
        "Rome wasn't built in a day.",
        "The company reported quarterly revenue of 4.2 billion dollars.",
        "Unemployment dropped to 3.7 percent last month.",
        "The central bank kept rates unchanged.",
        "Electric cars are becoming more affordable.",
        "Solar panels convert sunlight into electricity.",
        "Wind turbines generate power from moving air.",
        "The vaccine showed 95% efficacy in clinical trials.",
        "Regular exercise improves cardiovascular health.",
        "Drink plenty of water on hot days.",
        "Sleep is essential for memory consolidation.",
        "The children built a sandcastle on the beach.",
        "A red balloon floated over the rooftops.",
        "Snow covered the mountains overnight.",
        "The river flooded after days of heavy rain.",
        "He plays guitar in a jazz band on weekends.",
        "She is learning to speak Japanese.",
        "They adopted a puppy from the shelter.",
        "We watched the sunset from the hill.",
        "My grandmother bakes the best apple pie.",
        "The bakery on the corner sells fresh croissants.",
        "Traffic was heavy on the motorway this morning.",
        "The bridge will be closed for repairs until June.",
        "Please submit your application by Friday.",
        "Your package has been delivered.",
        "The password reset link expires in 24 hours.",
        "Two-factor authentication protects your account.",
        "Back up your data regularly.",
        "The spacecraft entered orbit around Mars.",
        "Astronomers discovered a new exoplanet.",
        "Black holes bend light around them.",
        "The chess champion resigned after 41 moves.",
        "Checkmate in three.",
        "The final score was 3-2 after extra time.",
        "Tickets cost €15 for adults and €7.50 for children.",
        "The temperature dropped to -12 °C overnight.",
        "1 + 1 = 2",
        "x^2 + y^2 = r^2",
        "∑ from i=1 to n of i equals n(n+1)/2",
        "α, β, γ and δ are Greek letters.",
        "The ratio is 3:2, or 1.5.",
        "Room 101, Building B, 42 Main Street, Springfield.",
        "ISBN 978-3-16-148410-0",
        "Order no. 5XJ-88QZ shipped via DHL.",
        "The cat sat on the mat.",
        "The dog sat on the log.",
        "A cat is sitting on a mat.",
        "Is the cat on the mat?",
        "I am not sure this is a good idea.",
        "This is definitely a great idea.",
        "Nothing happened.",
        "Everything happened at once.",
        "Once upon a time, in a land far away, there lived a king.",
        "And they all lived happily ever after.",
    ]
    # Long texts, well past max_seq_length (256), so truncation happens.
    s += [long_text(i) for i in range(6)]
    # Medium texts of 100-200 tokens.
    s += [" ".join(s[j:j + 12]) for j in range(0, 96, 24)]
    return s


def make_minilm():
    from sentence_transformers import SentenceTransformer

    out = os.path.join(HERE, "minilm")
    os.makedirs(out, exist_ok=True)
    model = SentenceTransformer(MINILM, device="cpu")
    model.eval()
    sents = sentences()
    assert len(sents) == 200, len(sents)
    feats = model.tokenize(sents)
    ids = []
    for row, mask in zip(feats["input_ids"].tolist(), feats["attention_mask"].tolist()):
        ids.append(row[:sum(mask)])
    with torch.no_grad():
        emb = model.encode(sents, batch_size=32, convert_to_numpy=True)
    emb = np.asarray(emb, dtype=np.float32)
    save_file({"embeddings": emb}, os.path.join(out, "reference.safetensors"))
    ref = {"versions": versions(), "model": "sentence-transformers/all-MiniLM-L6-v2",
           "max_seq_length": model.max_seq_length, "sentences": sents, "input_ids": ids}
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    lens = [len(x) for x in ids]
    print(f"minilm: {len(sents)} sentences, tokens min {min(lens)} max {max(lens)}, "
          f"{sum(n >= model.max_seq_length for n in lens)} truncated")


def main():
    torch.set_num_threads(2)
    make_tiny()
    make_minilm()


if __name__ == "__main__":
    main()
