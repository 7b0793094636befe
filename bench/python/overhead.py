#!/usr/bin/env python3
"""Per-token overhead of the Python loop against the C++ CLI, side by side in one run.

Greedy decode of N tokens (ignore_eos) after a short prompt on the same model: `flashrt run
--stats` (its "generated N tokens in S s") against `for t in session.generate(...)` timed around
the loop only (prefill excluded on both sides), alternating the two R times. Prints the machine,
the medians and the overhead in percent.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/overhead.py [-m MODEL] [-n 256] [-r 5]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import flashrt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT = "import os\nimport sys\n\n\ndef main():\n"


def machine():
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def cli_tokens_per_s(cli, model, n, threads):
    cmd = [cli, "run", "-m", model, "-p", PROMPT, "-n", str(n), "--temp", "0", "--ignore-eos",
           "--no-echo", "--stats"]
    if threads:
        cmd += ["-t", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"generated (\d+) tokens in ([0-9.]+) s", r.stderr)
    if not m:
        sys.exit(f"could not read the CLI's --stats line from: {r.stderr!r}")
    return int(m.group(1)) / float(m.group(2))


def python_tokens_per_s(model, n):
    s = model.session(ctx=n + 64)
    s.append(PROMPT)
    gen = s.generate(max_tokens=n, temperature=0, ignore_eos=True)
    t0 = time.perf_counter()
    count = 0
    for t in gen:
        count += 1
    return count / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default=os.path.join(REPO, "models", "pycoder-hybrid-12m.gguf"))
    ap.add_argument("-n", "--tokens", type=int, default=256)
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("-t", "--threads", type=int, default=0, help="compute threads (0: default)")
    ap.add_argument("--cli", default=os.path.join(REPO, "build", "flashrt"))
    a = ap.parse_args()
    model = flashrt.Model(a.model, threads=a.threads or None)
    python_tokens_per_s(model, 16)  # warm: page in the weights, size the thread pool
    cli_runs, py_runs = [], []
    for i in range(a.repeats):
        cli_runs.append(cli_tokens_per_s(a.cli, a.model, a.tokens, a.threads))
        py_runs.append(python_tokens_per_s(model, a.tokens))
        print(f"run {i + 1}/{a.repeats}: CLI {cli_runs[-1]:.1f} t/s, Python {py_runs[-1]:.1f} t/s",
              file=sys.stderr)
    c, p = statistics.median(cli_runs), statistics.median(py_runs)
    print(f"machine: {machine()}")
    print(f"model: {a.model}; greedy, {a.tokens} tokens, {a.repeats} alternating runs (median)")
    print(f"CLI (flashrt run)        {c:8.1f} tokens/s  {1000 / c:7.3f} ms/token")
    print(f"Python (for t in gen)    {p:8.1f} tokens/s  {1000 / p:7.3f} ms/token")
    print(f"Python loop overhead     {100 * (c / p - 1):+7.1f} %  ({1000 / p - 1000 / c:+.3f} ms/token)")


if __name__ == "__main__":
    main()
