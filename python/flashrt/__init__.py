"""flashrt: a latency-first LLM runtime whose sessions are execution-state capsules.

    import flashrt
    model = flashrt.Model("models/pycoder-hybrid-12m.gguf")
    s = model.session(ctx=2048)
    s.append("def fibonacci(n):")
    saved = s.snapshot()                      # the whole state, one copy
    for t in s.generate(max_tokens=32, temperature=0):
        print(t.text, end="", flush=True)
    s.restore(saved)                          # back to the boundary, byte for byte

The classes are those of the native module ``flashrt._flashrt`` (C++, pybind11); see the stub
``__init__.pyi`` for their signatures and ``docs/PYTHON.md`` for the threading rules.
"""

from ._flashrt import (  # noqa: F401
    Capsule,
    CapsuleError,
    Error,
    Generation,
    Model,
    Session,
    Token,
    Tokenizer,
    __version__,
)

__all__ = [
    "Capsule",
    "CapsuleError",
    "Error",
    "Generation",
    "Model",
    "Session",
    "Token",
    "Tokenizer",
    "__version__",
]
