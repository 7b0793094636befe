"""Creates a random-weight HF model folder with a real Qwen shape, using transformers itself, so
flashrt (loading the folder) and the transformers baseline run the very same weights.

    python3 bench/gpu/make_hf_model.py --arch qwen3_5 --shape 0.8b -o /tmp/qwen3_5-0.8b
"""
import argparse
import time

import torch
from transformers import AutoModelForCausalLM, Qwen3Config
from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig

SHAPES = {
    # Qwen/Qwen3-0.6B
    ("qwen3", "0.6b"): lambda: Qwen3Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
        max_position_embeddings=40960, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # Qwen/Qwen3.5-0.8B, text part
    ("qwen3_5", "0.8b"): lambda: Qwen3_5TextConfig(
        vocab_size=248320, hidden_size=1024, intermediate_size=3584, num_hidden_layers=24,
        num_attention_heads=8, num_key_value_heads=2, head_dim=256, rms_norm_eps=1e-6,
        linear_num_key_heads=16, linear_num_value_heads=16, linear_key_head_dim=128,
        linear_value_head_dim=128, linear_conv_kernel_dim=4, full_attention_interval=4,
        max_position_embeddings=262144, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25}),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    t = time.time()
    torch.manual_seed(0)
    cfg = SHAPES[(a.arch, a.shape)]()
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(a.output, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.output}: {a.arch} {a.shape}, {n / 1e6:.1f} M parameters, {time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
