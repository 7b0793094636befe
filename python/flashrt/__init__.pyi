# Type stubs of the flashrt module (its classes live in the native flashrt._flashrt).
import os
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import numpy.typing as npt

__version__: str

class Error(RuntimeError):
    """Any failure flashrt reports (bad file, bad argument, context full); the C++ message."""

class CapsuleError(Error):
    """A capsule that cannot be read or restored (corrupt, truncated, another model's or layout's).
    The session it was restored into is unchanged."""

class Tokenizer:
    """The model's tokenizer (byte-level BPE, identical ids to Hugging Face tokenizers)."""
    @property
    def vocab_size(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def bos_id(self) -> int | None: ...
    @property
    def eos_id(self) -> int | None: ...
    @property
    def stop_ids(self) -> list[int]:
        """Ids that end a generated turn (eos, <|im_end|>, <|endoftext|>, ...)."""
    @property
    def chat_template(self) -> str: ...
    def encode(self, text: str, parse_special: bool = True) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str: ...
    def token_bytes(self, id: int) -> bytes: ...
    def apply_chat_template(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        """Renders the model's Jinja chat template as transformers' apply_chat_template does;
        keyword arguments (enable_thinking=False, ...) are template variables."""

class Token:
    """One generated token: its id and the text it adds to the output (possibly empty: text that
    may be part of a stop string is held back, special tokens print nothing)."""
    @property
    def id(self) -> int: ...
    @property
    def text(self) -> str: ...

class Generation(Iterator[Token]):
    """The tokens of Session.generate as they are produced. Each step ends at a committed
    boundary: stopping early (break, close(), an exception, KeyboardInterrupt) leaves the session
    holding exactly the tokens produced so far."""
    def __iter__(self) -> Generation: ...
    def __next__(self) -> Token: ...
    def close(self) -> None:
        """Ends the generation here (finish_reason "cancelled" unless it had ended)."""
    def text(self) -> str:
        """Runs the generation to its end and returns the whole output text."""
    @property
    def tokens(self) -> list[int]:
        """The ids generated so far."""
    @property
    def finish_reason(
        self,
    ) -> Literal["stop", "length", "context_full", "cancelled", "error"] | None:
        """Why it ended ("error": a step raised); None while it runs."""
    @property
    def stats(self) -> dict[str, Any]:
        """drafted / accepted tokens and verify steps of a speculative generation."""

class Capsule:
    """A session's whole execution state at a boundary (KV, recurrent and conv state, MTP state,
    sampler RNG, position), tied to the model and slot layout by a fingerprint."""
    @property
    def pos(self) -> int:
        """Tokens whose state it holds (a pending sampled token not counted)."""
    @property
    def tokens(self) -> int:
        """Tokens of the boundary: pos plus its pending token."""
    @property
    def tier(self) -> Literal["device", "host", "disk"]: ...
    @property
    def nbytes(self) -> int:
        """Bytes of its payload."""
    @property
    def fingerprint(self) -> str: ...
    @property
    def path(self) -> str | None: ...
    def save(self, path: str | os.PathLike[str], compress: bool = False) -> int:
        """Writes the capsule file (atomically: temp file, fsync, rename); returns its size."""
    @staticmethod
    def load(path: str | os.PathLike[str]) -> Capsule:
        """Reads and validates a capsule file completely; CapsuleError when it is not valid."""
    def inspect(self) -> dict[str, Any]:
        """fingerprint, pos, tokens, tier, nbytes and one entry per region (name, dtype, kind,
        shape, bytes)."""

class Session:
    """One sequence: its state lives in one slot of the model. Every method call ends at a
    committed boundary."""
    @property
    def model(self) -> Model: ...
    @property
    def pos(self) -> int:
        """Tokens fed through the model (a pending sampled token not counted)."""
    @property
    def pending(self) -> int | None:
        """The last sampled token, not yet fed (it is fed by the next append or generate)."""
    @property
    def tokens(self) -> list[int]:
        """The boundary's tokens: the fed ones, then the pending one."""
    @property
    def ctx(self) -> int: ...
    def append(self, input: str | Sequence[int]) -> list[int]:
        """Feeds text (encoded with the model's tokenizer, special tokens parsed) or token ids
        after any pending token; returns the ids fed. On error the session is unchanged."""
    def forward(self, ids: Sequence[int]) -> npt.NDArray[np.float32]:
        """Feeds ids in one pass and returns every position's logits [len(ids), vocab] (a new
        array), as `flashrt logits` writes them. Needs a boundary without a pending token."""
    def logits(self) -> npt.NDArray[np.float32]:
        """The logits after the last fed token [vocab]: a read-only view of the session's own
        memory (no copy) on the CPU, valid until the session next changes; copy() to keep."""
    def generate(
        self,
        max_tokens: int = 128,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        stop_ids: Sequence[int] | None = None,
        ignore_eos: bool = False,
        json_schema: dict[str, Any] | str | None = None,
        grammar: str | None = None,
        json_object: bool = False,
        speculative: Literal["ngram", "mtp"] | Model | None = None,
        draft_max: int = 8,
    ) -> Generation:
        """Streams a continuation. Sampling as the CLI (temperature 0: greedy); seed reseeds the
        session's RNG first (None continues it: it is part of the state, so a restored capsule
        continues identically). Ends at the model's end-of-turn tokens (unless ignore_eos), a stop
        string or id, max_tokens, or a full context. json_schema / grammar (GBNF) / json_object
        constrain the output; speculative="ngram" (prompt lookup), "mtp" (the model's MTP head;
        needs model.session(mtp=True)) or a draft Model sharing the tokenizer produces the same
        tokens (greedy; the same distribution when sampling) in fewer target steps."""
    def snapshot(
        self, tier: Literal["host", "disk", "device"] = "host", path: str | os.PathLike[str] | None = None
    ) -> Capsule: ...
    def restore(self, capsule: Capsule) -> None:
        """Replaces the whole state with the capsule's; checked first (CapsuleError, session
        unchanged)."""
    def rollback(self, capsule: Capsule) -> None:
        """Returns to an earlier boundary (a restore)."""
    def fork(self) -> Session:
        """A new session (own slot) at this exact boundary."""
    def reset(self) -> None:
        """Back to an empty boundary."""
    def seed(self, seed: int) -> None: ...

class Model:
    """A model loaded from a GGUF file or a Hugging Face folder, on a backend ("cpu", "cuda")."""
    def __init__(
        self, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None
    ) -> None:
        """threads: compute threads (process-wide; default: one per core)."""
    @property
    def info(self) -> dict[str, Any]:
        """architecture, format, path, parameters, vocab, layers, hidden, weight bytes, state
        bytes per token and fixed, MTP layers, device."""
    @property
    def tokenizer(self) -> Tokenizer:
        """Error when the model ships none."""
    @property
    def device(self) -> str: ...
    def batch(
        self,
        prompts: Sequence[str | Sequence[int]],
        max_tokens: int = 128,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        ignore_eos: bool = False,
        slots: int | None = None,
        ctx: int = 4096,
    ) -> list[dict[str, Any]]:
        """A continuation of every prompt with continuous batching: the prompts' tokens decode
        side by side in shared steps (at most `slots` at once, default 4). Prompt i samples with
        seed + i. One dict per prompt, in order: text, tokens, finish_reason, prompt_tokens."""
    def session(
        self,
        ctx: int = 4096,
        kv_type: Literal["f32", "f16"] = "f32",
        batch: int = 512,
        gdn: Literal["auto", "recurrent", "chunked"] = "auto",
        mtp: bool = False,
        seed: int | None = None,
    ) -> Session:
        """A new session of ctx tokens; seed seeds its sampler RNG (None: a random seed)."""
