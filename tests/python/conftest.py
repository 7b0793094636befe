"""Fixtures of the Python suite: paths (repository, ../shared, build), a tiny safetensors reader for
the reference files (independent of flashrt), the flashrt CLI, and the three models, loaded once.

Paths: the repository is two levels above this file; the shared fixtures are $FLASHRT_SHARED or
<repo>/../shared; the build is $FLASHRT_BUILD or <repo>/build (its `flashrt` binary is the CLI the
bindings are compared with). A test whose model, reference or CLI is missing is skipped, naming it.
"""

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import flashrt

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FLASHRT_SHARED") or REPO.parent / "shared")
BUILD = Path(os.environ.get("FLASHRT_BUILD") or REPO / "build")
CLI = BUILD / "flashrt"

GGUF = REPO / "models" / "pycoder-hybrid-12m.gguf"
HYBRID_HF = SHARED / "models" / "pycoder-hybrid-12m"
DENSE_HF = SHARED / "models" / "pycoder-dense-7m"
REFERENCE = HYBRID_HF / "reference.safetensors"

# A short Python prompt the models continue with ordinary code (8 tokens).
PROMPT = "import os\nimport sys\n\n\ndef main():\n"

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """The tensors of a .safetensors file as read-only NumPy arrays: an 8-byte little-endian header
    length, a JSON header {name: {dtype, shape, data_offsets}}, then the data."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: {name} has dtype {t['dtype']}, which this reader does not read")
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=np.dtype(_DTYPES[t["dtype"]]).newbyteorder("<")).reshape(
            t["shape"]
        )
    return out


def need(path):
    """The path, or a skip of the test when it does not exist."""
    path = Path(path)
    if not path.exists():
        pytest.skip(f"fixture missing: {path}")
    return path


def run_cli(*args, check=True):
    """Runs build/flashrt with the arguments; returns the CompletedProcess (text, both streams)."""
    need(CLI)
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, check=check)


def cli(*args):
    """stdout of build/flashrt with the arguments (an error fails the test with its stderr)."""
    r = run_cli(*args, check=False)
    if r.returncode != 0:
        pytest.fail(f"flashrt {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}")
    return r.stdout


def ids_of(gen):
    """Runs a generation to its end: the ids it produced."""
    return [t.id for t in gen]


def greedy(session, n, **kw):
    """n greedy tokens (ignore_eos) from the session's boundary."""
    return ids_of(session.generate(max_tokens=n, temperature=0, ignore_eos=True, **kw))


@pytest.fixture(scope="session")
def hybrid():
    """The trained 12M qwen3_5 hybrid as the repository ships it (GGUF, tokenizer inside)."""
    return flashrt.Model(need(GGUF))


@pytest.fixture(scope="session")
def hybrid_hf():
    """The same weights as a Hugging Face folder (config.json, model.safetensors, tokenizer.json)."""
    return flashrt.Model(need(HYBRID_HF / "config.json").parent)


@pytest.fixture(scope="session")
def dense():
    """The trained 7M dense qwen3 (same tokenizer as the hybrid, another model)."""
    return flashrt.Model(need(DENSE_HF / "config.json").parent)


@pytest.fixture(scope="session")
def reference():
    """transformers' float64 logits and greedy continuations of the hybrid for prompts p0..p2."""
    return read_safetensors(need(REFERENCE))
