"""The request bodies the server accepts: unknown fields, wrong types and out-of-range values are 422s
that name the field (FastAPI's validation). What depends on the server (its caps, the model's
vocabulary) is checked by `check_spec` on the job a codec decoded, in the same shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..generate.picking import SamplingOptions
from ..settings import bounds, specs
from .limits import ServeLimits
from .protocol import JobSpec

MAX_STOPS = 4
MAX_STOP_CHARS = 64
MAX_LOGPROBS = 10
MAX_SEED = 2**63 - 1


def sampling(name: str):
    """A request field for one of the sampling options, with the default, meaning and bounds its
    declaration gives (settings.py), so the CLI, the API and the server refuse the same values."""
    declared, spec = specs(SamplingOptions)[name]
    return Field(declared.default, description=spec.help, **bounds(SamplingOptions, name))


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prime: str = Field("", description="text to start from (not repeated in the output)")
    max_new_chars: int = Field(200, ge=0, description="characters to generate, at most the server's --max-length")
    temperature: float = sampling("temperature")
    top_k: int = sampling("top_k")
    top_p: float = sampling("top_p")
    greedy: bool = sampling("greedy")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="the same seed gives the same text when served alone")
    num_samples: int = Field(1, ge=1, description="samples drawn together, each a row of the batch")
    stop: list[str] = Field(
        default_factory=list, max_length=MAX_STOPS, description="strings that end a sample; not included"
    )
    logprobs: int = Field(0, ge=0, le=MAX_LOGPROBS, description="the top N characters' log-probabilities per step")


class CompletionRequest(BaseModel):
    """OpenAI's completions request, for characters: a token is one character."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt: str | list[str] = ""
    max_tokens: int = Field(16, ge=0)
    temperature: float = sampling("temperature")
    top_p: float = sampling("top_p")
    top_k: int = sampling("top_k")
    n: int = Field(1, ge=1)
    stream: bool = False
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    echo: bool = False
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    user: str | None = None
    # OpenAI's sampling knobs a character model has no use for: accepted at their neutral values only.
    presence_penalty: float = Field(0.0, ge=0.0, le=0.0)
    frequency_penalty: float = Field(0.0, ge=0.0, le=0.0)
    best_of: int | None = Field(None, ge=1, le=1)

    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise ValueError("prompt: one prompt per request")
        return self.prompt[0]

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class Rejected(Exception):
    """A request the server will not run: its 422's detail (FastAPI's list of field errors, or a line)."""

    def __init__(self, detail: list[dict] | str):
        super().__init__(detail)
        self.detail = detail


def sampling_options(temperature: float, top_k: int, top_p: float, greedy: bool) -> SamplingOptions:
    """The request's sampling options, or `Rejected` with the line `SamplingOptions` gives."""
    try:
        return SamplingOptions(temperature, top_k, top_p, greedy)
    except CharRNNError as exc:
        raise Rejected(str(exc)) from None


def check_spec(spec: JobSpec, limits: ServeLimits, vocab: Vocab, names: dict[str, str] | None = None) -> None:
    """`Rejected` unless the job fits the server's caps, its stops are valid and the model knows its
    prime's characters; the errors name the fields as /generate does, or as `names` maps them."""
    errors = cap_errors(
        {
            "max_new_chars": (spec.max_new_chars, limits.max_length),
            "num_samples": (spec.num_samples, limits.max_batch),
            "prime": (len(spec.prime), limits.max_prime),
        }
    )
    errors += stop_errors(list(spec.stop))
    try:
        vocab.encode(spec.prime)
    except CharRNNError as exc:  # names the characters the model never saw
        errors.append({"loc": ["body", "prime"], "msg": str(exc), "type": "value_error"})
    for error in errors:
        error["loc"] = [(names or {}).get(part, part) for part in error["loc"]]
    if errors:
        raise Rejected(errors)


def cap_errors(field_values: dict[str, tuple[int, int]]) -> list[dict]:
    """FastAPI-shaped 422 entries for each field whose value passes its cap: {field: (value, cap)}."""
    return [
        {"loc": ["body", name], "msg": f"must be at most {cap} on this server, got {value}", "type": "less_than_equal"}
        for name, (value, cap) in field_values.items()
        if value > cap
    ]


def stop_errors(stops: list[str], field: str = "stop") -> list[dict]:
    errors = []
    if len(stops) > MAX_STOPS:
        errors.append({"loc": ["body", field], "msg": f"at most {MAX_STOPS} stop strings", "type": "too_long"})
    for index, stop in enumerate(stops):
        if not 1 <= len(stop) <= MAX_STOP_CHARS:
            msg = f"a stop string is 1 to {MAX_STOP_CHARS} characters"
            errors.append({"loc": ["body", field, index], "msg": msg, "type": "string_length"})
    return errors
