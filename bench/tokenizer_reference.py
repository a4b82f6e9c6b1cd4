"""Reference token ids from llama.cpp's own tokenizer for the GGUF vocabulary test.

`tests/gguf_vocab.rs` rebuilds each real GGUF file's tokenizer from its metadata and must give
the ids llama.cpp gives on every line written here. The lines are generated deterministically
(German with umlauts and ß, English, French, CJK, emoji, code with tabs and indentation, runs
of spaces and newlines, empty lines, HTML and chat-control strings, rare and unassigned
characters), tokenized by llama.cpp through llama-cpp-python with the vocabulary only
(`vocab_only=True`, nothing but the metadata is read), and written as JSONL to
`tests/fixtures/tokenizer/<file stem>.jsonl`: one object per line, with

    text    the input
    ids     llama.cpp's ids without BOS/EOS and without parsing special tokens
    special the ids with control tokens parsed (`special=True`), only where they differ
    detok   llama.cpp's detokenization of `ids` (`llama_detokenize`, control tokens hidden),
            only where it is not `text`

SentencePiece files that do not prepend a space (Gemma) also get
`<file stem>.space-prefix.jsonl`: the first 1000 lines through a vocabulary-only copy of the
file with `tokenizer.ggml.add_space_prefix` switched on, the Llama 2, Mistral and Phi-3
setting, which the test applies to the same metadata.

llama-cpp-python is never a project dependency; run this in a throwaway virtualenv:

    python3 -m venv /work/refvenv
    CMAKE_ARGS="-DGGML_NATIVE=OFF" /work/refvenv/bin/pip install gguf llama-cpp-python
    /work/refvenv/bin/python bench/tokenizer_reference.py \
        ~/.cache/quarry/real-models/gemma-3-270m-q4_k_m.gguf \
        ~/.cache/quarry/real-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
"""
import argparse
import json
import pathlib
import random

GERMAN = [
    "Größenänderung der Straße",
    "Die Fußgängerüberführung über der Autobahn wird am Dienstag gesperrt.",
    "Äpfel, Öl und Übermut: ein schöner Spaß für große Leute.",
    "Weißt du, wie viel Maß Bier der Bürgermeister heuer getrunken hat?",
    "ẞ ist der große Buchstabe von ß; STRASSE oder STRAẞE.",
    "Schließlich prüfte die Behörde die Zuständigkeit gemäß § 3 Abs. 2.",
    "Grüß Gott! Können Sie mir bitte helfen?",
    "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen",
    "Ölförderländer, Übergrößen, äußerst süße Brötchen.",
]
ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Retrieval-augmented generation grounds answers in your own documents.",
    "It's a well-known fact: don't trust, verify; you'll see why we'd rather check.",
    "Section 4.2 (pages 17-19) describes the results in Table 3.",
    "HTTP/1.1 200 OK; Content-Type: text/html; charset=utf-8",
    "e-mail me at someone@example.com or visit https://example.org/a?b=c&d=e#f",
    "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-9 1,000,000 $9.99 50%",
    "ALL CAPS SENTENCE WITH ACRONYMS LIKE NASA, HTML AND GGUF.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]
FRENCH = [
    "Ça va ? Où est la bibliothèque, s'il vous plaît ?",
    "L'œuvre de Molière est déjà très connue ; naïve, elle ne l'est pas.",
    "« Bonjour », dit-il — puis il s'en alla à Noël.",
    "Les élèves ont étudié l'histoire de la Révolution française en 1789.",
    "Être ou ne pas être : voilà la question. Çà et là, des cœurs brisés.",
]
CJK = [
    "日本語のテキストを正しく分割できますか？",
    "東京は日本の首都です。",
    "我们今天去北京大学参观了图书馆。",
    "繁體中文與简体中文混合在一起。",
    "한국어 문장도 잘 처리되어야 합니다.",
    "カタカナとひらがなと漢字",
    "𠀀𠀁𪚥 (CJK Extension B)",
]
EMOJI = [
    "I love this 😀😃😄!",
    "👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🇩🇪🇫🇷🇯🇵 flags",
    "🚀 launch ✨ sparkle ❤️ heart ☕ coffee",
    "🤖🧠📚 → 💡",
    "Smile: 🙂 wink: 😉 cry: 😢 skull: 💀",
]
CODE = [
    "fn main() {\n    println!(\"Hello, world!\");\n}",
    "def f(x):\n\treturn x ** 2  # square\n",
    "\tif (a && b) {\n\t\treturn a->next;\n\t}",
    "for (int i = 0; i < n; ++i) { sum += v[i]; }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "const x = {a: 1, b: [2, 3], c: \"four\"};",
    "    let mut map: HashMap<String, Vec<u32>> = HashMap::new();",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "x=1;y=2;z=x+y;print(z)",
    "if __name__ == \"__main__\":\n    main()",
    "<div class=\"note\"><p>Hello <b>world</b></p></div>",
    "$ cargo test --workspace -- --nocapture 2>&1 | tee log.txt",
    "/* comment */ // another\n/// doc comment",
    "=====\n-----\n*****\n#####",
    "a\\b\\c \\n \\t \"quoted\" 'single' `backtick`",
]
SPECIAL = [
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text after bos",
    "<eos>",
    "<pad><unk><mask>",
    "<unused0> and <unused12>",
    "<table><tr><td>cell</td></tr></table>",
    "<s>old</s> <b>bold</b> <i>it</i> <code>x</code>",
    "<h1>Title</h1>\n<h2>Sub</h2>",
    "[multimodal] <start_of_image> <end_of_image>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
    "<|endoftext|><|fim_prefix|>def<|fim_suffix|>pass<|fim_middle|>",
    "<0x41> is not a byte token here",
    "▁ a literal lower one eighth block ▁▁",
    "<start_of_turn<end_of_turn>>",
    "<<bos>>",
]
RARE = [
    "Ελληνικά: Καλημέρα κόσμε",
    "Русский текст: Съешь же ещё этих мягких французских булок.",
    "العربية: مرحبا بالعالم",
    "हिन्दी: नमस्ते दुनिया",
    "ไทย: สวัสดีชาวโลก",
    "Math: ∑_{i=1}^n i² = n(n+1)/2, ∀x∈ℝ, √2 ≈ 1.414, ∞ ≠ ∅",
    "Combining: e\u0301 vs é, A\u030a vs Å, n\u0303",
    "Zero width: a\u200bb\u200cc\u200dd\ufeffe",
    "Private use: \ue000\uf8ff \U000f0000 \U0010fffd",
    "Unassigned-ish: \U0001fbf0 \U0002a6df \U000e0001",
    "Control chars: \x01\x02\x07\x1b[0m\x7f",
    "Fullwidth: ＡＢＣ１２３！",
    "Ligatures: ﬁ ﬂ ﬀ, old: ſ þ ð æ ø å",
    "Box: ┌─┐│└┘ ░▒▓█",
    "NUL:\x00:end",
]
WHITESPACE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n ", "\t \t",
    " " * 31, " " * 32, " " * 33, " " * 64, "\n" * 31, "\n" * 32, "\n" * 40, "\t" * 31,
    "\t" * 35, " \t\n\r\x0b\x0c", "\u00a0non-breaking\u00a0space", "\u3000ideographic space",
]
CATEGORIES = [GERMAN, ENGLISH, FRENCH, CJK, EMOJI, CODE, SPECIAL, RARE, WHITESPACE]
SEPARATORS = [" ", "  ", "   ", "\n", "\n\n", "\t", "", " \n", "\n ", "    ", " " * 7, "\r\n"]


def test_lines(count=3000, seed=20240611):
    """Every fixed sample, then random mixtures of them with random whitespace."""
    rng = random.Random(seed)
    lines = [s for category in CATEGORIES for s in category]
    for s in list(lines):
        lines += [" " + s, s + " ", "  " + s + "  ", "\n" + s, s + "\n", s.upper(), s.lower()]
    while len(lines) < count:
        parts = []
        for _ in range(rng.randint(1, 5)):
            sample = rng.choice(rng.choice(CATEGORIES))
            if sample and rng.random() < 0.3:
                # A random slice, so words are cut mid-piece and mid-character sequence.
                a = rng.randrange(len(sample))
                b = rng.randrange(a, len(sample)) + 1
                sample = sample[a:b]
            parts.append(sample)
            parts.append(rng.choice(SEPARATORS))
        line = "".join(parts)
        if rng.random() < 0.2:
            line = rng.choice(SEPARATORS) + line
        if rng.random() < 0.5:
            line = line.rstrip(" \n\t\r") if rng.random() < 0.5 else line
        lines.append(line)
    return lines[:count]


def detokenize(llm, ids):
    """llama.cpp's own `llama_detokenize` (the binding's `detokenize` glues pieces itself)."""
    import ctypes

    import llama_cpp

    tokens = (llama_cpp.llama_token * len(ids))(*ids)
    size = 16 * len(ids) + 16
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(llm._model.vocab, tokens, len(ids), buf, size, False, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def space_prefix_copy(path, target):
    """A copy of `path` with its metadata only and `add_space_prefix` switched on."""
    import gguf

    reader = gguf.GGUFReader(path)
    writer = gguf.GGUFWriter(target, reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture",
                                              "tokenizer.ggml.add_space_prefix"):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), kind, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), kind)
    writer.add_bool("tokenizer.ggml.add_space_prefix", True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_fixture(llm, lines, target):
    with target.open("w", encoding="utf-8") as out:
        for text in lines:
            raw = text.encode("utf-8")
            ids = llm.tokenize(raw, add_bos=False, special=False)
            record = {"text": text, "ids": ids}
            special = llm.tokenize(raw, add_bos=False, special=True)
            if special != ids:
                record["special"] = special
            detok = detokenize(llm, ids).decode("utf-8", errors="replace")
            if detok != text:
                record["detok"] = detok
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gguf", nargs="+", type=pathlib.Path)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument(
        "--out", type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizer",
    )
    args = parser.parse_args()

    import tempfile

    import llama_cpp

    args.out.mkdir(parents=True, exist_ok=True)
    lines = test_lines(args.count)
    for path in args.gguf:
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        targets = [(llm, lines, args.out / (path.stem + ".jsonl"))]
        meta = llm.metadata
        if (meta.get("tokenizer.ggml.model") == "llama"
                and meta.get("tokenizer.ggml.add_space_prefix") == "false"):
            copy = pathlib.Path(tempfile.mkdtemp()) / "vocab.gguf"
            space_prefix_copy(path, copy)
            prefixed = llama_cpp.Llama(model_path=str(copy), vocab_only=True, verbose=False)
            targets.append((prefixed, lines[:1000], args.out / (path.stem + ".space-prefix.jsonl")))
        for model, subset, target in targets:
            write_fixture(model, subset, target)
            print(f"{target}: {len(subset)} lines, {target.stat().st_size} bytes, "
                  f"llama-cpp-python {llama_cpp.__version__}")


if __name__ == "__main__":
    main()
