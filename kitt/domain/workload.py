"""Seeded synthetic workloads: what each request asks for.

A prompt is a unique prefix (so that no engine's prefix cache serves a request from an earlier
one) followed by words drawn from a fixed vocabulary of short, common English words, each of
which most BPE tokenizers encode as a single token. When the engine offers a tokenize endpoint,
the service measures tokens per word once and scales the word count to hit the target input
length; the actual lengths are always those the server reports in `usage`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Literal

import msgspec

Api = Literal["chat", "completions"]

# Short words that common tokenizers (Llama, GPT-2/4, Qwen, SmolLM) keep as one token each
# when preceded by a space.
_VOCABULARY = tuple(
    """the of and to in is was for on are as with his they at be this from have or by one had
    not but what all were when we there can an your which their said if do will each about how up
    out them then she many some so these would other into has more her two like him see time
    could no make than first been its who now people my made over did down only way find use may
    water long little very after words called just where most know get through back much go good
    new write our me man too any day same right look think also around another came come work
    three word must because does part even place well such here take why things help put years
    different away again off went old number great tell men say small every found still between
    name should home big give air line set own under read last never us left end along while might
    next sound below saw something thought both few those always looked show large often together
    asked house world going want school important until form food keep children feet land side
    without boy once animals life enough took sometimes four head above kind began almost live page
    got earth need far hand high year mother light parts country father let night following picture
    being study second eyes soon times story boys since white days ever paper hard near sentence
    better best across during today others however sure means knew try told young miles sun ways
    thing whole hear example heard several change answer room sea against top turned learn point
    city play toward five using himself usually""".split()
)


class WorkloadSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What each request of a scenario asks for."""

    api: Api = "chat"
    input_tokens: int = 128
    output_tokens: int = 128
    # Tokens of a common prefix shared by every request (a system prompt, few-shot examples).
    # 0 means every prompt starts with its own unique prefix.
    shared_prefix_tokens: int = 0
    # Ask the engine to ignore end-of-sequence so every request produces exactly output_tokens.
    ignore_eos: bool = True

    def __post_init__(self) -> None:
        if self.input_tokens < 1:
            raise ValueError("input_tokens must be >= 1")
        if self.output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
        if not 0 <= self.shared_prefix_tokens < self.input_tokens:
            raise ValueError("shared_prefix_tokens must be >= 0 and below input_tokens")


class PromptRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request to send: index within its repetition, the prompt, and the output budget."""

    index: int
    api: Api
    prompt: str
    max_tokens: int
    ignore_eos: bool


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 64-bit seed for a sub-stream (scenario, repetition, warm-up) of the run's seed."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class SyntheticWorkload:
    """Deterministic prompts for one scenario repetition.

    `tokens_per_word` comes from calibration against the engine's tokenizer (1.0 when the
    engine has no tokenize endpoint).
    """

    def __init__(
        self, spec: WorkloadSpec, *, seed: int, stream: str, tokens_per_word: float = 1.0
    ) -> None:
        if tokens_per_word <= 0:
            raise ValueError("tokens_per_word must be positive")
        self.spec = spec
        self._seed = seed
        self._stream = stream
        self._tokens_per_word = tokens_per_word
        shared_words = self._words_for(spec.shared_prefix_tokens)
        shared_rng = random.Random(derive_seed(seed, "shared"))
        self._shared_prefix = " ".join(shared_rng.choices(_VOCABULARY, k=shared_words))

    def _words_for(self, tokens: int) -> int:
        return max(0, round(tokens / self._tokens_per_word))

    def request(self, index: int) -> PromptRequest:
        rng = random.Random(derive_seed(self._seed, self._stream, index))
        # The unique marker (one word) comes right after any shared prefix, so that the shared
        # part stays cacheable and nothing after it is.
        marker = f"{rng.getrandbits(48):012x}-{index}"
        body_tokens = self.spec.input_tokens - self.spec.shared_prefix_tokens
        body_words = max(1, self._words_for(body_tokens) - 1)
        body = " ".join(rng.choices(_VOCABULARY, k=body_words))
        parts = [p for p in (self._shared_prefix, marker, body) if p]
        return PromptRequest(
            index=index,
            api=self.spec.api,
            prompt=" ".join(parts),
            max_tokens=self.spec.output_tokens,
            ignore_eos=self.spec.ignore_eos,
        )


def calibration_text(words: int = 1000) -> str:
    """A fixed text in the workload's vocabulary, for measuring an engine's tokens per word."""
    return " ".join(random.Random(0).choices(_VOCABULARY, k=words))
