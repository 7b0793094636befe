"""The transformers baseline on the same weights as flashrt: decode tokens/s at batch 1 (greedy,
KV / recurrent cache), prefill time, and the logits of a fixed prompt for an agreement check.

    python3 bench/gpu/hf_baseline.py MODEL_DIR --decode 256 --prefill 2048 --logits-ids 1,2,3 --logits-out x.npy
"""
import argparse
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def timed(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--decode", type=int, default=256)
    ap.add_argument("--prefill", type=str, default="2048")
    ap.add_argument("--logits-ids", type=str, default="")
    ap.add_argument("--logits-out", type=str, default="")
    a = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16).cuda().eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    rows = []
    with torch.inference_mode():
        if a.logits_ids:
            ids = torch.tensor([[int(x) for x in a.logits_ids.split(",")]], device="cuda")
            logits = model(ids).logits[0].float().cpu().numpy()
            np.save(a.logits_out, logits)
        prompt = torch.randint(0, vocab, (1, 32), generator=g).cuda()
        model.generate(prompt, max_new_tokens=16, min_new_tokens=16, do_sample=False)  # warm-up
        out, secs = timed(lambda: model.generate(prompt, max_new_tokens=a.decode, min_new_tokens=a.decode,
                                                  do_sample=False))
        n = out.shape[1] - prompt.shape[1]
        rows.append(f"- transformers decode, batch 1: **{n / secs:.1f} tokens/s** ({1e3 * secs / n:.2f} ms/token)")
        for length in [int(x) for x in a.prefill.split(",") if x]:
            ids = torch.randint(0, vocab, (1, length), generator=g).cuda()
            model(ids[:, :256])  # warm-up
            _, secs = timed(lambda: model(ids, use_cache=True))
            rows.append(f"- transformers prefill {length} tokens: {1e3 * secs:.1f} ms = **{length / secs:.0f} tokens/s**")
    print(f"#### transformers {torch.__version__.split('+')[0]} / {model.config.model_type} on {torch.cuda.get_device_name()}\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
