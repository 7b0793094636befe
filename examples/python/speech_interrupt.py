#!/usr/bin/env python3
"""Speech-style interrupt and resume: the assistant is speaking (streaming), the user barges in,
the assistant answers the interruption, then resumes its first reply exactly where it stopped.

The interruption point is a committed boundary (every generation step ends at one), so a capsule
taken there holds the whole state: resuming it continues with exactly the tokens an uninterrupted
reply would have had, without re-prefilling anything.

    PYTHONPATH=build/python python3 examples/python/speech_interrupt.py [MODEL]
"""

import sys
import time

import flashrt

MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/pycoder-hybrid-12m.gguf"
PROMPT = '"""Utilities for reading configuration files."""\nimport json\nimport os\n\n\n'
BARGE_IN_AFTER = 30  # tokens spoken before the user interrupts
REPLY, ANSWER = 80, 30


def main():
    model = flashrt.Model(MODEL)
    s = model.session(ctx=2048, seed=0)
    s.append(PROMPT)
    before_reply = s.snapshot()

    print("assistant: ", end="")
    spoken = []
    gen = s.generate(max_tokens=REPLY, temperature=0.7)
    for tok in gen:
        print(tok.text, end="", flush=True)
        spoken.append(tok.id)
        if len(spoken) == BARGE_IN_AFTER:
            break  # the user starts talking: stop speaking at this token
    gen.close()
    t = time.perf_counter()
    interrupted = s.snapshot()  # where the reply stopped: state, pending token, sampler RNG
    snap_ms = 1000 * (time.perf_counter() - t)
    print(f" [interrupted after {len(spoken)} tokens; snapshot {snap_ms:.3f} ms]")

    s.append("\n# user: what about YAML files?\n")
    print("assistant (to the interruption): ", end="")
    for tok in s.generate(max_tokens=ANSWER, temperature=0.7):
        print(tok.text, end="", flush=True)
    print()

    t = time.perf_counter()
    s.restore(interrupted)  # back into the first reply, mid-sentence
    restore_ms = 1000 * (time.perf_counter() - t)
    print(f"assistant (resuming, restore {restore_ms:.3f} ms): ...", end="")
    resumed = []
    for tok in s.generate(max_tokens=REPLY - BARGE_IN_AFTER, temperature=0.7):
        print(tok.text, end="", flush=True)
        resumed.append(tok.id)
    print()

    # The proof: the same reply without the interruption, from the capsule before it.
    s.restore(before_reply)
    whole = [tok.id for tok in s.generate(max_tokens=REPLY, temperature=0.7)]
    same = whole[: len(spoken) + len(resumed)] == spoken + resumed
    print(f"interrupted + resumed == uninterrupted reply: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
