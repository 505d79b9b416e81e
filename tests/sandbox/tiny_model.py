# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a tiny LlamaForCausalLM checkpoint with random weights for the sandbox tests.

The tests cannot reach Hugging Face, so they serve this model through vLLM's CPU backend.
Every run produces byte-identical files (fixed seed, hand-built tokenizer, sorted JSON), so
copying the directory to hosts is idempotent; files that already hold the right bytes are not
rewritten.

Usage: python tests/sandbox/tiny_model.py OUTPUT_DIR

Controller-side dependencies only: numpy, safetensors, tokenizers (no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter

import numpy as np
from safetensors.numpy import save as safetensors_save
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

SEED = 20260101

# head_dim must be at least 64: vLLM's CPU attention rejects smaller heads
# (docs/shared reference vllm-facts.md §9, "Unsupported CPU attention configuration: head_dim=16").
HIDDEN = 256
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
LAYERS = 2
INTERMEDIATE = 512
VOCAB = 512
MAX_POSITIONS = 1024
INIT_RANGE = 0.02

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2

# Fixed training text for the merges. Its content only shapes which byte pairs become tokens;
# any text decodes anyway because every byte has its own token.
CORPUS = """
The fleet runs language models on machines with very different graphics cards. Some hosts
carry old boards that only compute in single precision, others carry new cards that prefer
bfloat16. Each host gets a container, a systemd unit and a health check, and the controller
waits until the server answers before it moves on to the next host in the batch.
A tiny model with random weights is enough to test the deployment: it loads in seconds, it
fits in a few megabytes of memory, and its answers are nonsense, which is fine, because the
tests only check that the server starts, lists the model, refuses requests without the key
and returns a completion of the requested length.
Operators read the logs to learn how many tokens the key value cache can hold and how many
requests of the maximum length can run at the same time. When a host restarts, the service
comes back on its own; when the image changes, the handler restarts the service once.
Hello world! Hello there, how are you today? The quick brown fox jumps over the lazy dog.
0 1 2 3 4 5 6 7 8 9 10 20 100 2026 {"model": "tiny", "prompt": "Hello", "max_tokens": 8}
"""


def byte_alphabet() -> list:
    """The 256 printable stand-ins for bytes used by byte-level BPE, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {}
    extra = 0
    for value in range(256):
        if value in printable:
            mapping[value] = chr(value)
        else:
            mapping[value] = chr(256 + extra)
            extra += 1
    return [mapping[value] for value in range(256)]


def learn_merges(words: Counter, count: int) -> list:
    """Greedy BPE with a total order on ties, so the result never depends on hash order."""
    splits = {word: tuple(word) for word in words}
    merges = []
    while len(merges) < count:
        pairs = Counter()
        for word, freq in words.items():
            symbols = splits[word]
            for index in range(len(symbols) - 1):
                pairs[(symbols[index], symbols[index + 1])] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        joined = best[0] + best[1]
        for word in words:
            symbols = splits[word]
            merged = []
            index = 0
            while index < len(symbols):
                if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                    merged.append(joined)
                    index += 2
                else:
                    merged.append(symbols[index])
                    index += 1
            splits[word] = tuple(merged)
    return merges


def build_tokenizer() -> Tokenizer:
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(piece for piece, dummy in pre.pre_tokenize_str(CORPUS))
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for symbol in byte_alphabet():
        vocab[symbol] = len(vocab)
    merges = learn_merges(words, VOCAB - len(vocab))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    if len(vocab) != VOCAB:
        raise RuntimeError("corpus too small: %d tokens instead of %d" % (len(vocab), VOCAB))

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A",
        pair="<s> $A <s> $B",
        special_tokens=[("<s>", BOS_ID)],
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def uniform(rng: np.random.Generator, shape: tuple, bound: float) -> np.ndarray:
    # Built from the raw PCG64 stream, whose output NumPy keeps stable across releases,
    # rather than from distribution methods that may change between NumPy versions.
    size = int(np.prod(shape))
    raw = rng.bit_generator.random_raw(size)
    unit = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return ((unit * 2.0 - 1.0) * bound).astype("<f4").reshape(shape)


def build_weights() -> dict:
    rng = np.random.Generator(np.random.PCG64(SEED))
    # Uniform(-b, b) with the standard deviation of the usual normal initialisation.
    bound = INIT_RANGE * 3.0 ** 0.5
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "lm_head.weight": (VOCAB, HIDDEN)}
    norms = ["model.norm.weight"]
    for layer in range(LAYERS):
        prefix = "model.layers.%d." % layer
        shapes.update({
            prefix + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
            prefix + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            prefix + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            prefix + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
            prefix + "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
            prefix + "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
            prefix + "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
        })
        norms += [prefix + "input_layernorm.weight", prefix + "post_attention_layernorm.weight"]
    tensors = {name: uniform(rng, shapes[name], bound) for name in sorted(shapes)}
    for name in norms:
        tensors[name] = np.ones((HIDDEN,), dtype="<f4")
    return tensors


def dump_json(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def build_files() -> dict:
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": INIT_RANGE,
        "vocab_size": VOCAB,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "use_cache": True,
        "torch_dtype": "float32",
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "</s>",
        "model_max_length": MAX_POSITIONS,
        "clean_up_tokenization_spaces": False,
        # A plain template so that /v1/chat/completions works too.
        "chat_template": (
            "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
            "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
        ),
    }
    special_tokens_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                          "pad_token": "</s>"}
    generation_config = {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}
    tokenizer_json = json.loads(build_tokenizer().to_str())
    return {
        "config.json": dump_json(config),
        "generation_config.json": dump_json(generation_config),
        "model.safetensors": safetensors_save(build_weights(), metadata={"format": "pt"}),
        "special_tokens_map.json": dump_json(special_tokens_map),
        "tokenizer.json": dump_json(tokenizer_json),
        "tokenizer_config.json": dump_json(tokenizer_config),
    }


def write_if_changed(path: str, content: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", help="directory to write the checkpoint into")
    args = parser.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    written = [name for name, content in sorted(build_files().items())
               if write_if_changed(os.path.join(args.output_dir, name), content)]
    if written:
        print("tiny_model: wrote %s in %s" % (", ".join(written), args.output_dir))
    else:
        print("tiny_model: %s is up to date" % args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
