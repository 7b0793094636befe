"""The Python module against ground truth: the references in ../shared (transformers' float64
logits and greedy continuations), the flashrt CLI on the same model (logits, streamed text), and
the capsule invariants of tests/capsule/capsule_session_test.cpp seen from Python."""

import _thread
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import flashrt

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FLASHRT_SHARED") or REPO.parent / "shared")
BUILD = Path(os.environ.get("FLASHRT_BUILD") or REPO / "build")
CLI = BUILD / "flashrt"
GGUF = REPO / "models" / "pycoder-hybrid-12m.gguf"
HF = SHARED / "models" / "pycoder-hybrid-12m"
DENSE = SHARED / "models" / "pycoder-dense-7m"
PROMPT = "import os\nimport sys\n\n\ndef main():\n"


def read_safetensors(path):
    """The tensors of a .safetensors file (a little-endian u64 header size, a JSON header, data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def ids_of(gen):
    """Runs a generation to its end: its token ids."""
    return [t.id for t in gen]


def need(path):
    if not Path(path).exists():
        pytest.skip(f"{path} is missing")
    return path


def cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def hybrid():
    return flashrt.Model(need(GGUF))


@pytest.fixture(scope="module")
def hybrid_hf():
    return flashrt.Model(need(HF))


@pytest.fixture(scope="module")
def dense():
    return flashrt.Model(need(DENSE))


@pytest.fixture(scope="module")
def reference():
    return read_safetensors(need(HF / "reference.safetensors"))


def state_bytes(session, tmp_path, name):
    """The bytes of an uncompressed capsule of the session: equal bytes, equal state."""
    p = tmp_path / name
    session.snapshot().save(p)
    return p.read_bytes()


# ---- model, tokenizer ----

def test_info_describes_the_model(hybrid):
    info = hybrid.info
    assert info["architecture"] == "qwen3_5" and info["format"] == "gguf"
    assert info["vocab"] == 8192 and info["layers"] == 8
    assert info["gated_deltanet_layers"] == 6 and info["attention_layers"] == 2
    assert info["state_bytes_fixed"] > 0 and info["state_bytes_per_token"] > 0


def test_tokenizer_matches_the_cli_and_round_trips(hybrid):
    text = "def add(a, b):\n    return a + b  # ünïcode ✓\n"
    ids = hybrid.tokenizer.encode(text)
    assert ids == json.loads(cli("tokenize", "-m", GGUF, "-p", text, "--json"))["ids"]
    assert hybrid.tokenizer.decode(ids) == text
    assert hybrid.tokenizer.encode("<|im_start|>") == [1]
    assert hybrid.tokenizer.encode("<|im_start|>", parse_special=False) != [1]


def test_chat_template_matches_flashrt_template(hybrid_hf, tmp_path):
    messages = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Sort a list."}]
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps({"messages": messages, "add_generation_prompt": True}))
    text = hybrid_hf.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert text == cli("template", "-m", HF, "-f", conv)[: len(text)]
    assert "Sort a list." in text


def test_missing_file_and_bad_device_raise():
    with pytest.raises(flashrt.Error, match="no-such-model"):
        flashrt.Model("/nonexistent/no-such-model.gguf")
    with pytest.raises(flashrt.Error, match="unknown device"):
        flashrt.Model(str(GGUF), device="tpu")


# ---- logits ----

@pytest.mark.parametrize("which", ["gguf", "hf"])
def test_forward_equals_flashrt_logits(which, hybrid, hybrid_hf, tmp_path):
    model, path = (hybrid, GGUF) if which == "gguf" else (hybrid_hf, HF)
    ids = [322, 293, 888, 1098, 1369, 12, 7, 4000]
    out = tmp_path / "l.npy"
    cli("logits", "-m", path, "--ids", ",".join(map(str, ids)), "-o", out)
    assert np.array_equal(model.session(ctx=64).forward(ids), np.load(out))


def test_logits_match_the_transformers_reference(hybrid_hf, reference):
    for p in ("p0", "p1", "p2"):
        ref = reference[f"{p}.logits"]
        got = hybrid_hf.session(ctx=64).forward(reference[f"{p}.input_ids"].tolist())
        # f32 compute from f32 weights against float64: the C++ suite's bound (2e-4 of the scale).
        assert np.max(np.abs(got - ref)) <= 2e-4 * np.max(np.abs(ref)), p


def test_logits_are_a_read_only_view_of_the_last_row(hybrid):
    ids = [5, 77, 300, 2048]
    s = hybrid.session(ctx=64)
    s.append(ids)
    last = s.logits()
    assert np.array_equal(last, hybrid.session(ctx=64).forward(ids)[-1])
    assert last.base is not None and np.shares_memory(last, s.logits())
    with pytest.raises(ValueError):
        last[0] = 1.0


# ---- generation ----

@pytest.mark.parametrize("which", ["gguf", "hf"])
def test_greedy_tokens_equal_the_reference(which, hybrid, hybrid_hf, reference):
    model = hybrid if which == "gguf" else hybrid_hf
    for p in ("p0", "p1", "p2"):
        s = model.session(ctx=128)
        s.append(reference[f"{p}.input_ids"].tolist())
        gen = s.generate(max_tokens=48, temperature=0, ignore_eos=True)
        assert [t.id for t in gen] == reference[f"{p}.greedy"].tolist(), p
        assert gen.finish_reason == "length"


@pytest.mark.parametrize("prompt,extra", [(PROMPT, []), ("class Stack:\n", ["--ignore-eos"])])
def test_streamed_text_equals_the_cli(hybrid, prompt, extra):
    expected = cli("run", "-m", GGUF, "-p", prompt, "-n", 60, "--temp", 0, "--no-echo", *extra)
    s = hybrid.session(ctx=256)
    s.append(prompt)
    gen = s.generate(max_tokens=60, temperature=0, ignore_eos=bool(extra))
    assert "".join(t.text for t in gen) + "\n" == expected
    assert gen.text() == expected[:-1]


def test_an_end_token_finishes_with_stop(hybrid):
    s = hybrid.session(ctx=512)
    s.append("x = 1\n")
    gen = s.generate(max_tokens=400, temperature=0, stop_ids=[hybrid.tokenizer.encode("\n")[0]])
    tokens = [t.id for t in gen]
    assert gen.finish_reason == "stop" and tokens[-1] == hybrid.tokenizer.encode("\n")[0]
    assert s.tokens[-len(tokens) :] == tokens and s.pending == tokens[-1]


def test_stop_string_ends_before_it(hybrid):
    s = hybrid.session(ctx=512)
    s.append(PROMPT)
    plain = s.fork().generate(max_tokens=60, temperature=0, ignore_eos=True).text()
    stop = plain[30:36]  # a string the greedy output holds, spanning tokens
    gen = s.generate(max_tokens=60, temperature=0, ignore_eos=True, stop=[stop, "never seen"])
    text = gen.text()
    assert gen.finish_reason == "stop" and text == plain[: plain.index(stop)]
    assert len(gen.tokens) < 60


def test_seeded_sampling_reproduces(hybrid):
    runs = []
    for _ in range(2):
        s = hybrid.session(ctx=256)
        s.append(PROMPT)
        runs.append(ids_of(s.generate(max_tokens=40, temperature=0.8, seed=7, ignore_eos=True)))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("spec", ["ngram", "draft"])
def test_speculative_greedy_equals_plain(hybrid_hf, dense, spec):
    out = []
    for speculative in (None, dense if spec == "draft" else spec):
        s = hybrid_hf.session(ctx=512)
        s.append(PROMPT)
        out.append(ids_of(s.generate(max_tokens=80, temperature=0, ignore_eos=True, speculative=speculative)))
    assert out[0] == out[1]


def test_json_object_output_parses(hybrid):
    s = hybrid.session(ctx=1024)
    s.append('config = ')
    gen = s.generate(max_tokens=300, temperature=0, json_object=True)
    text = gen.text()
    assert gen.finish_reason == "stop"
    assert isinstance(json.loads(text), dict)


def test_keyboard_interrupt_leaves_a_committed_boundary(hybrid):
    s = hybrid.session(ctx=4096)
    prompt = s.append(PROMPT)
    gen = s.generate(max_tokens=3000, temperature=0, ignore_eos=True)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in gen:
            pass
    timer.cancel()
    done = list(gen.tokens)
    assert 0 < len(done) < 3000
    assert s.tokens == prompt + done and s.pos == len(s.tokens) - 1
    rest = ids_of(s.generate(max_tokens=20, temperature=0, ignore_eos=True))
    ref = hybrid.session(ctx=4096)
    ref.append(PROMPT)
    assert ids_of(ref.generate(max_tokens=len(done) + 20, temperature=0, ignore_eos=True)) == done + rest


def test_batch_greedy_equals_each_session(hybrid):
    prompts = [PROMPT, "class Stack:\n", "def fib(n):", [5, 77, 300]]
    results = hybrid.batch(prompts, max_tokens=30, temperature=0, ignore_eos=True, slots=2)
    assert len(results) == len(prompts)
    for prompt, r in zip(prompts, results):
        s = hybrid.session(ctx=256)
        s.append(prompt)
        gen = s.generate(max_tokens=30, temperature=0, ignore_eos=True)
        assert r["tokens"] == ids_of(gen) and r["text"] == gen.text()
        assert r["finish_reason"] == "length" and r["prompt_tokens"] == s.pos - 29


# ---- capsules ----

def test_restore_is_byte_exact_and_continues_identically(hybrid, tmp_path):
    s = hybrid.session(ctx=512)
    s.append(PROMPT)
    before = state_bytes(s, tmp_path, "a.cap")
    c = s.snapshot()
    greedy = ids_of(s.generate(max_tokens=30, temperature=0))
    sampled = ids_of(s.generate(max_tokens=30, temperature=0.9, ignore_eos=True))
    s.restore(c)
    assert state_bytes(s, tmp_path, "b.cap") == before
    assert ids_of(s.generate(max_tokens=30, temperature=0)) == greedy
    assert ids_of(s.generate(max_tokens=30, temperature=0.9, ignore_eos=True)) == sampled


def test_fork_is_independent(hybrid):
    s = hybrid.session(ctx=512)
    s.append(PROMPT)
    f = s.fork()
    tokens, logits = s.tokens, s.logits().copy()
    f.append("    x = 1\n")
    f.generate(max_tokens=10, temperature=0).text()
    assert s.tokens == tokens and np.array_equal(s.logits(), logits)
    g = s.fork()
    assert ids_of(g.generate(max_tokens=20, temperature=0)) == ids_of(s.generate(max_tokens=20, temperature=0))


@pytest.mark.parametrize("compress", [False, True])
def test_capsule_file_restores_into_a_new_session(hybrid, tmp_path, compress):
    s = hybrid.session(ctx=2048)
    s.append(PROMPT)
    s.generate(max_tokens=5, temperature=0).text()  # a pending token travels too
    path = tmp_path / "s.cap"
    assert s.snapshot().save(path, compress=compress) == path.stat().st_size
    loaded = flashrt.Capsule.load(path)
    assert loaded.tokens == len(s.tokens) and loaded.pos == s.pos
    names = [e["name"] for e in loaded.inspect()["entries"]]
    assert "meta.pos" in names and "tokens" in names
    t = hybrid.session(ctx=4096)  # another context size: positional regions travel by length
    t.restore(loaded)
    assert t.tokens == s.tokens
    assert ids_of(t.generate(max_tokens=25, temperature=0)) == ids_of(s.generate(max_tokens=25, temperature=0))


def test_disk_tier_snapshot_restores(hybrid, tmp_path):
    s = hybrid.session(ctx=512)
    s.append(PROMPT)
    c = s.snapshot(tier="disk", path=tmp_path / "d.cap")
    assert c.tier == "disk" and Path(c.path).exists() and c.tokens == len(s.tokens)
    expect = ids_of(s.fork().generate(max_tokens=15, temperature=0))
    s.append("    pass\n")
    s.restore(c)
    assert ids_of(s.generate(max_tokens=15, temperature=0)) == expect


def test_bad_capsules_raise_and_leave_the_session_unchanged(hybrid, dense, tmp_path):
    s = hybrid.session(ctx=512)
    s.append(PROMPT * 3)  # 27 tokens: more than `small` below holds
    good = tmp_path / "good.cap"
    s.snapshot().save(good)
    raw = good.read_bytes()
    corrupt = tmp_path / "corrupt.cap"
    mid = len(raw) // 2  # inside a region's payload (padding between regions is no state)
    corrupt.write_bytes(raw[:mid] + bytes([raw[mid] ^ 0x40]) + raw[mid + 1 :])
    truncated = tmp_path / "truncated.cap"
    truncated.write_bytes(raw[: len(raw) // 2])
    for bad in (corrupt, truncated):
        with pytest.raises(flashrt.CapsuleError):
            flashrt.Capsule.load(bad)
    other = dense.session(ctx=512)
    other.append(PROMPT)
    small = hybrid.session(ctx=16)
    small.append([1, 2, 3])
    f16 = hybrid.session(ctx=512, kv_type="f16")
    f16.append(PROMPT)
    before = state_bytes(s, tmp_path, "before.cap")
    for wrong in (other.snapshot(), f16.snapshot()):  # another model; another slot layout
        with pytest.raises(flashrt.CapsuleError):
            s.restore(wrong)
    with pytest.raises(flashrt.CapsuleError):  # a capsule past this session's context
        small.restore(flashrt.Capsule.load(good))
    assert issubclass(flashrt.CapsuleError, flashrt.Error)
    assert state_bytes(s, tmp_path, "after.cap") == before
    assert small.tokens == [1, 2, 3]


# ---- installing ----

def test_pip_installs_the_package_into_a_venv_without_an_index(tmp_path):
    import venv  # noqa: F401  (python3-venv)

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", env_dir], check=True)
    pip = env_dir / "bin" / "pip"
    env = dict(os.environ, FLASHRT_BUILD_DIR=str(BUILD), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)  # the installed copy, not the build tree
    subprocess.run([pip, "install", "-q", "--no-build-isolation", "--no-index", REPO], check=True,
                   cwd=tmp_path, env=env, capture_output=True)
    probe = "import flashrt, pathlib; print(pathlib.Path(flashrt.__file__).parent)"
    out = subprocess.run([env_dir / "bin" / "python", "-c", probe], check=True, cwd=tmp_path,
                         env=env, capture_output=True, text=True).stdout.strip()
    installed = Path(out)
    assert installed.is_relative_to(env_dir) and (installed / "__init__.pyi").exists()
    assert list(installed.glob("_flashrt*.so"))
