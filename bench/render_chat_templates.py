"""Reference renderings of the chat templates in tests/fixtures/templates, made the way
Hugging Face transformers' apply_chat_template renders them (jinja2 sandbox, trim_blocks,
lstrip_blocks, loopcontrols, raise_exception, strftime_now, tojson without ASCII escaping).
The Rust test `chat_templates_match_reference_renderings` compares minijinja's output with
these files. Run in a throwaway virtualenv with jinja2; never a project dependency:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install jinja2
    /tmp/ref/bin/python bench/render_chat_templates.py
"""
import datetime
import json
import pathlib

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "templates"
# bos, eos per template (tests/fixtures/templates/SOURCES.md)
TOKENS = {
    "qwen2.5": ("", "<|im_end|>"),
    "qwen3": ("", "<|im_end|>"),
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama3.2": ("<|begin_of_text|>", "<|eot_id|>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "gemma3": ("<bos>", "<eos>"),
}
NOW = datetime.datetime(2026, 11, 21, 9, 30)
CONVERSATIONS = {
    "with_system": [
        {"role": "system", "content": "Answer only from the sources. Cite [n]."},
        {"role": "user", "content": "Wie lang ist die Kündigungsfrist?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "What is the notice period?"},
        {"role": "assistant", "content": "Three months [1]."},
        {"role": "user", "content": "And the deposit?"},
    ],
}


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)
    for name, (bos, eos) in TOKENS.items():
        template = env.from_string((HERE / f"{name}.jinja").read_text())
        for conv_name, messages in CONVERSATIONS.items():
            out = template.render(messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)
            (HERE / f"{name}.{conv_name}.expected").write_text(out)
            print(f"{name}.{conv_name}: {len(out)} chars")


if __name__ == "__main__":
    main()
