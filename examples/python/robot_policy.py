#!/usr/bin/env python3
"""A robot-policy-style loop: observe, branch K candidate actions from one capsule, score each,
roll back, commit the best, repeat.

A policy that plans by sampling candidates pays one prefill per candidate without capsules; here
each branch starts from a snapshot of the observed state (a memory copy, recurrent state included)
and the loser branches are rolled back exactly. The default model is a code model, so the
"observations" are lines of Python and the "actions" the lines it writes next.

    PYTHONPATH=build/python python3 examples/python/robot_policy.py [MODEL]
"""

import sys
import time

import numpy as np

import flashrt

MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/pycoder-hybrid-12m.gguf"
OBSERVATIONS = [
    "import math\n\n\ndef distance(a, b):\n",
    "\n\ndef clamp(x, lo, hi):\n",
    "\n\nclass Controller:\n    def __init__(self, gain):\n",
]
CANDIDATES, ACTION_TOKENS = 4, 24


def log_softmax(logits):
    z = logits - logits.max()
    return z - np.log(np.exp(z).sum())


def main():
    model = flashrt.Model(MODEL)
    s = model.session(ctx=2048, seed=0)
    for step, obs in enumerate(OBSERVATIONS):
        t = time.perf_counter()
        s.append(obs)
        observe_ms = 1000 * (time.perf_counter() - t)
        t = time.perf_counter()
        here = s.snapshot()  # the decision point
        snap_ms = 1000 * (time.perf_counter() - t)
        best = None
        restore_ms = []
        for k in range(CANDIDATES):
            t = time.perf_counter()
            s.restore(here)  # every branch starts from the same boundary
            restore_ms.append(1000 * (time.perf_counter() - t))
            logprob, text = 0.0, ""
            gen = s.generate(max_tokens=ACTION_TOKENS, temperature=0.9, seed=100 * step + k, stop="\n\n")
            for tok in gen:
                # The logits that drew this token are the ones before it was fed: the session's
                # pending logits, read in place (a NumPy view, no copy).
                logprob += float(log_softmax(s.logits())[tok.id])
                text += tok.text
            mean = logprob / max(1, len(gen.tokens))
            print(f"  step {step} candidate {k}: mean log p {mean:6.3f}  {text.strip()[:48]!r}")
            if best is None or mean > best[0]:
                best = (mean, s.snapshot(), text)
        s.restore(best[1])  # commit the best branch: its whole state, not a replay of its text
        print(f"step {step}: kept {best[2].strip()[:60]!r}\n"
              f"  observe (prefill) {observe_ms:.2f} ms, snapshot {snap_ms:.3f} ms, "
              f"restore {np.median(restore_ms):.3f} ms (median of {CANDIDATES})")
    print("\nfinal program:\n" + model.tokenizer.decode(s.tokens))


if __name__ == "__main__":
    main()
