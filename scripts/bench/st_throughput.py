#!/usr/bin/env python3
"""sentence-transformers' all-MiniLM-L6-v2 throughput on this CPU, for benches/commands.rs.

Usage: st_throughput.py MODEL_DIR SENTENCES.json THREADS -> prints "sentences_per_second N".
Same model folder, sentences, batch size (32) and thread count as the Rust side.
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402


def main() -> None:
    model_dir, sentences_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    sentences = json.load(open(sentences_path))
    transformer = models.Transformer(model_dir, max_seq_length=256)
    dim = getattr(transformer, "get_embedding_dimension", transformer.get_word_embedding_dimension)()
    model = SentenceTransformer(
        modules=[transformer, models.Pooling(dim, pooling_mode="mean"), models.Normalize()], device="cpu"
    )
    model.encode(sentences[:32], batch_size=32)  # warm-up
    start = time.perf_counter()
    model.encode(sentences, batch_size=32)
    print(f"sentences_per_second {len(sentences) / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
