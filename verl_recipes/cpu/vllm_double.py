"""``vllm_double``: a CPU test double for verl's vLLM rollout server. Not for training a policy.

vLLM cannot run on a machine without a GPU, so the CPU GRPO test and ``gen-searcher train
smoke --device cpu`` select this rollout (``actor_rollout_ref.rollout.name=vllm_double``)
instead. It implements the rollout server interface verl 0.9.1 drives, and nothing else:

* :class:`VllmDoubleReplica` (verl's ``RolloutReplica``): starts one :class:`VllmDoubleServer`
  Ray actor per replica, as vLLM's replica starts its HTTP server actors;
* :class:`VllmDoubleServer`: vLLM's token-in/token-out ``generate`` signature over a
  Hugging Face model on CPU: prompt token ids and PIL images in, response token ids and
  their log-probs out (``TokenOutput``), plus the sleep/wake/abort calls the trainer makes;
* :class:`VllmDoubleAdapter` (verl's ``BaseRollout``, in the hybrid actor worker): pushes the
  actor's weights into the server after every update, as vLLM's ``ServerAdapter`` does.

Everything around it (agent loops, router, trainer, FSDP actor, reward) is verl's and ours,
unmodified. A random tiny model never writes a tool call, so the server can also follow a
script: ``+actor_rollout_ref.rollout.engine_kwargs.vllm_double.script=FILE`` names a JSON
file ``{"turns": [[reply, ...], [reply, ...], ...], "rules": [{"when": TEXT, "turns": ...}]}``;
the reply for a request is chosen by its turn (the assistant replies already in the ChatML
prompt), round-robin within the turn, from the first rule whose ``when`` occurs in the prompt
(else from the top-level ``turns``). Scripted replies are teacher-forced: their tokens are
fixed, but their log-probs are the model's own, computed exactly as for sampled tokens, so
rollout and actor log-probs stay comparable. Unscripted turns are sampled from the model. A rule
``{"when": TEXT, "error": MESSAGE}`` makes every request whose prompt holds TEXT raise (a test's way
to drop an episode).

It is as strict as verl's vLLM server where a test would otherwise pass on CPU and fail on GPUs
(see :class:`VllmDoubleServer`); ``tests/verl/test_verl_vllm_contract.py`` holds the two side by side.

Imported by verl in every process through ``VERL_USE_EXTERNAL_MODULES`` (``gen-searcher
train grpo --device cpu`` sets it), which registers the name with verl's two rollout registries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput

NAME = "vllm_double"
logger = logging.getLogger(__name__)


def server_actor_name(replica_rank: int) -> str:
    return f"{NAME}_server_{replica_rank}"


class ScriptedReplies:
    """Replies by turn, round-robin within each turn, optionally chosen by the prompt (see the module docstring)."""

    def __init__(
        self,
        turns: list[list[str]],
        rules: list[tuple[str, ScriptedReplies]] | None = None,
        errors: list[tuple[str, str]] | None = None,
    ) -> None:
        if not turns or not all(isinstance(t, list) and t and all(isinstance(r, str) for r in t) for t in turns):
            raise ValueError('a vllm_double script is {"turns": [[reply, ...], ...]} with at least one reply per turn')
        self.turns = turns
        self.rules = rules or []
        self.errors = errors or []
        self.served = [0] * len(turns)

    @classmethod
    def parse(cls, data: Any) -> ScriptedReplies:
        if not isinstance(data, dict):
            raise ValueError("a vllm_double script is a JSON object")
        rules = [(str(rule["when"]), cls.parse(rule)) for rule in data.get("rules", []) if "error" not in rule]
        errors = [(str(rule["when"]), str(rule["error"])) for rule in data.get("rules", []) if "error" in rule]
        return cls(data.get("turns"), rules, errors)  # type: ignore[arg-type]

    def raise_for(self, prompt: str) -> None:
        """A rule ``{"when": TEXT, "error": MESSAGE}``: a request whose prompt holds TEXT fails (a test's fault)."""
        for needle, message in self.errors:
            if needle in prompt:
                raise RuntimeError(message)

    @classmethod
    def load(cls, path: str | Path) -> ScriptedReplies:
        return cls.parse(json.loads(Path(path).read_text(encoding="utf-8")))

    def next(self, turn: int, prompt: str = "") -> str | None:
        """The next reply for ``turn`` (from the first rule matching ``prompt``); None past the last turn."""
        for needle, script in self.rules:
            if needle in prompt:
                return script.next(turn)
        if turn >= len(self.turns):
            return None
        replies = self.turns[turn]
        reply = replies[self.served[turn] % len(replies)]
        self.served[turn] += 1
        return reply


#: vLLM's ``SamplingParams`` fields (vLLM 0.12-0.20, what verl 0.9.1 pins): a key outside this set is a
#: ``TypeError`` in vLLM; one inside it that the double does not implement is refused by name.
VLLM_SAMPLING_KEYS = frozenset(
    {
        "n", "best_of", "presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "top_p",
        "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens", "min_tokens", "logprobs",
        "prompt_logprobs", "flat_logprobs", "detokenize", "skip_special_tokens", "spaces_between_special_tokens",
        "logits_processors", "include_stop_str_in_output", "truncate_prompt_tokens", "output_kind",
        "structured_outputs", "guided_decoding", "logit_bias", "allowed_token_ids", "extra_args", "bad_words",
    }
)  # fmt: skip
#: The keys the double implements (``max_new_tokens`` is verl's server's sglang-style alias for ``max_tokens``).
IMPLEMENTED_SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "repetition_penalty", "ignore_eos", "max_tokens", "max_new_tokens"}
    | {"logprobs", "seed", "detokenize", "skip_special_tokens"}
)


def aborted(global_steps: int | None) -> TokenOutput:
    """What verl's vLLM server returns for a request aborted by ``abort_all_requests``."""
    return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted", extra_fields={"global_steps": global_steps})


def sampling_options(sampling_params: dict[str, Any]) -> dict[str, Any]:
    """``sampling_params`` checked as vLLM's ``SamplingParams(**params)`` would (plus what the double lacks)."""
    unknown = sorted(set(sampling_params) - VLLM_SAMPLING_KEYS - {"max_new_tokens"})
    if unknown:
        raise TypeError(f"SamplingParams got unexpected keyword arguments: {unknown}")
    missing = sorted(set(sampling_params) - IMPLEMENTED_SAMPLING_KEYS)
    if missing:
        raise NotImplementedError(f"vllm_double does not implement the sampling keys {missing}")
    return dict(sampling_params)


class VllmDoubleServer:
    """A Hugging Face model on CPU behind vLLM's token-in/token-out ``generate`` (one per replica).

    Strict where verl's vLLM server is: the same ``generate`` signature (an unknown argument is a
    ``TypeError``), sampling keys checked as ``SamplingParams`` checks them, vision placeholders and
    the out-of-vocabulary tail masked out of the logits (sampling and log-probs alike), the context
    checks and the ``max_tokens`` default of verl's server, log-probs only when asked, ``aborted``
    for requests cut by ``abort_all_requests``. With ``load_format: dummy`` (verl's default) it starts
    from random weights like vLLM, and every weight sync must bring every parameter.
    """

    def __init__(
        self,
        model_path: str,
        script: str | None = None,
        trust_remote_code: bool = False,
        *,
        limits: RolloutLimits | None = None,
        load_format: str = "auto",
        seed: int = 0,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        self.processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        if load_format == "dummy":  # vLLM's random start: only a complete weight sync makes it the policy
            torch.manual_seed(seed)
            config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
            model: Any = AutoModelForImageTextToText.from_config(config, trust_remote_code=trust_remote_code)
            self.model = model.float().eval()
        else:
            self.model = AutoModelForImageTextToText.from_pretrained(
                model_path, dtype=torch.float32, trust_remote_code=trust_remote_code
            ).eval()
        self.load_format = load_format
        self.limits = (limits or RolloutLimits()).resolved(max_position_embeddings(self.model.config))
        self.image_token_id = self.model.config.image_token_id
        self.assistant_ids = self.tokenizer.encode("<|im_start|>assistant", add_special_tokens=False)
        self.stop_ids = self._stop_ids()
        self.turn_end_id = turn_end_token_id(self.tokenizer)
        self.banned_ids = banned_token_ids(self.tokenizer, self.processor, self.model.config)
        self.script = ScriptedReplies.load(script) if script else None
        self.lock = asyncio.Lock()
        self.global_steps: int | None = None
        self.weight_updates = 0
        self.last_sync_tensors = 0
        self.requests = 0
        self.aborted_requests = 0
        self._paused = False
        self._rejecting = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._abort_epoch = 0

    def _stop_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _turn(self, prompt_ids: list[int]) -> int:
        """The agent loop's turn: how many assistant replies the prompt already holds (ChatML)."""
        needle, count = self.assistant_ids, 0
        for start in range(len(prompt_ids) - len(needle) + 1):
            if prompt_ids[start : start + len(needle)] == needle:
                count += 1
        return max(count - 1, 0)  # the last one opens the reply being generated

    def _vision_inputs(self, prompt_ids: list[int], images: list[Any]) -> dict[str, Any]:
        if not images:
            if self.image_token_id in prompt_ids:
                raise ValueError("the prompt holds image tokens but no image was sent")
            return {}
        inputs = self.processor.image_processor(images=images, return_tensors="pt")
        merge = self.processor.image_processor.merge_size
        expected = int(inputs["image_grid_thw"].prod(dim=-1).sum()) // (merge * merge)
        found = prompt_ids.count(self.image_token_id)
        if found != expected:
            raise ValueError(f"{len(images)} image(s) need {expected} image tokens in the prompt, found {found}")
        return {"pixel_values": inputs["pixel_values"], "image_grid_thw": inputs["image_grid_thw"]}

    def _model_inputs(self, ids: list[int], vision: dict[str, Any]) -> dict[str, Any]:
        """``ids`` as a batch of one, with what M-RoPE needs to place the image tokens."""
        import torch

        input_ids = torch.tensor([ids])
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        if vision:
            inputs |= vision | {"mm_token_type_ids": (input_ids == self.image_token_id).long()}
        return inputs

    def _mask(self, logits: Any) -> Any:
        """vLLM's ``compute_logits`` patch in verl: the banned ids can never be sampled (nor scored)."""
        logits[..., self.banned_ids] = float("-inf")
        return logits

    def _log_probs(self, ids: list[int], start: int, vision: dict[str, Any], temperature: float) -> list[float]:
        """Log-probs of ``ids[start:]`` given what precedes them, with logits scaled as verl's actor does."""
        import torch

        with torch.no_grad():
            logits = self.model(**self._model_inputs(ids, vision)).logits[0, start - 1 : -1].float()
        scaled = torch.log_softmax(self._mask(logits) / max(temperature, 1e-6), dim=-1)
        return scaled.gather(-1, torch.tensor(ids[start:]).unsqueeze(-1)).squeeze(-1).tolist()

    def _sample(self, ids: list[int], vision: dict[str, Any], params: dict[str, Any], limit: int) -> list[int]:
        import torch
        from transformers import LogitsProcessorList

        temperature = float(params.get("temperature", 1.0))
        top_k = int(params.get("top_k", -1))
        if params.get("seed") is not None:
            torch.manual_seed(int(params["seed"]))
        with torch.no_grad():
            out = self.model.generate(
                **self._model_inputs(ids, vision),
                max_new_tokens=limit,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=float(params.get("top_p", 1.0)),
                top_k=top_k if top_k > 0 else None,
                repetition_penalty=float(params.get("repetition_penalty", 1.0)),
                logits_processor=LogitsProcessorList([lambda _ids, scores: self._mask(scores)]),
                eos_token_id=None if params.get("ignore_eos") else (sorted(self.stop_ids) or None),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        tokens: list[int] = out[0, len(ids) :].tolist()
        return tokens

    def max_tokens(self, prompt_len: int, params: dict[str, Any]) -> int:
        """verl's vLLM server: ``max_tokens`` (else the response budget left), clamped to the context left."""
        room = self.limits.max_model_len - prompt_len
        if room < 1:
            raise ValueError(
                f"Prompt length ({prompt_len}) leaves no room to generate within the model's maximum context "
                f"length ({self.limits.max_model_len}); need at least 1 token of headroom."
            )
        if "max_tokens" in params:
            wanted = int(params.pop("max_tokens"))
        elif "max_new_tokens" in params:
            wanted = int(params.pop("max_new_tokens"))
        else:
            budget = self.limits.prompt_length + self.limits.response_length - prompt_len
            wanted = min(self.limits.response_length, budget)
        return max(1, min(wanted, room))

    def _scripted(self, reply: str, limit: int) -> list[int]:
        response: list[int] = self.tokenizer.encode(reply, add_special_tokens=False)
        banned = sorted(set(response) & set(self.banned_ids))
        if banned:
            raise ValueError(f"the script's reply holds tokens vLLM never samples: {banned}")
        response = response[:limit]
        if len(response) < limit:
            response.append(self.turn_end_id)  # how the chat template ends an assistant turn
        return response

    def _generate(self, prompt_ids: list[int], params: dict[str, Any], images: list[Any]) -> TokenOutput:
        limit = self.max_tokens(len(prompt_ids), params)
        want_logprobs = bool(params.pop("logprobs", False))
        vision = self._vision_inputs(prompt_ids, images)
        reply = None
        if self.script:
            reply = self.script.next(self._turn(prompt_ids), self.tokenizer.decode(prompt_ids))
        response = (
            self._scripted(reply, limit) if reply is not None else self._sample(prompt_ids, vision, params, limit)
        )
        log_probs = None
        if want_logprobs:
            temperature = float(params.get("temperature", 1.0))
            log_probs = self._log_probs(prompt_ids + response, len(prompt_ids), vision, temperature)
        return TokenOutput(
            token_ids=response,
            log_probs=log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        audio_data: list[Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        priority: int = 0,
        kv_transfer_params: dict[str, Any] | None = None,
    ) -> TokenOutput:
        """vLLM's ``generate`` in verl 0.9.1 (same parameters): token ids (and images) in, response out."""
        if video_data or audio_data:
            raise ValueError("vllm_double does not take videos or audio")
        if kv_transfer_params is not None:
            raise NotImplementedError("vllm_double has no prefill/decode disaggregation (kv_transfer_params)")
        params = sampling_options(sampling_params)
        if self.script is not None:
            self.script.raise_for(self.tokenizer.decode(list(prompt_ids)))
        while self._paused:  # verl's submission gate: park until resume_generation, or reject
            if self._rejecting:
                self.aborted_requests += 1
                return aborted(self.global_steps)
            await self._resumed.wait()
        epoch = self._abort_epoch
        async with self.lock:
            if epoch != self._abort_epoch:
                self.aborted_requests += 1
                return aborted(self.global_steps)
            self.requests += 1
            output = await asyncio.to_thread(self._generate, list(prompt_ids), params, list(image_data or []))
        if epoch != self._abort_epoch:  # aborted while generating: vLLM returns no tokens
            self.aborted_requests += 1
            return aborted(self.global_steps)
        return output

    def parameter_names(self) -> dict[int, str]:
        """One name per distinct parameter tensor (tied weights count once)."""
        names: dict[int, str] = {}
        for name, param in self.model.named_parameters(remove_duplicate=False):
            names.setdefault(id(param), name)
        return names

    async def load_weights(self, weights: dict[str, Any], global_steps: int | None = None) -> int:
        """Replace the model's weights with the actor's: every name known, every parameter present; returns how many."""
        import torch

        async with self.lock:
            params = dict(self.model.named_parameters(remove_duplicate=False)) | dict(self.model.named_buffers())
            unknown = sorted(set(weights) - set(params))
            if unknown:
                raise KeyError(f"vllm_double got weights the model does not have: {unknown[:5]}")
            covered = {id(params[name]) for name in weights}
            missing = sorted(name for key, name in self.parameter_names().items() if key not in covered)
            if missing:
                raise ValueError(
                    f"partial weight sync: {len(weights)} tensors arrived, {len(missing)} parameters missing "
                    f"(first: {missing[:5]})"
                )
            with torch.no_grad():
                for name, tensor in weights.items():
                    params[name].copy_(tensor.to(params[name].dtype))
            self.global_steps = global_steps
            self.weight_updates += 1
            self.last_sync_tensors = len(weights)
            return len(weights)

    async def stats(self) -> dict[str, Any]:
        """What the tests read: requests served and aborted, weight updates and their size, the last update's step."""
        return {
            "requests": self.requests,
            "aborted_requests": self.aborted_requests,
            "weight_updates": self.weight_updates,
            "last_sync_tensors": self.last_sync_tensors,
            "model_parameters": len(self.parameter_names()),
            "global_steps": self.global_steps,
        }

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict[str, Any]:
        """verl's pause: requests in flight come back ``aborted``; new ones park (or, rejecting, abort)."""
        self._paused, self._rejecting = True, reject_request
        self._resumed.clear()
        self._abort_epoch += 1
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        self._paused = self._rejecting = False
        self._resumed.set()

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict[str, Any]:
        return {"aborted": False, "request_id": request_id}

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # The control calls verl's trainer and checkpoint manager make; on CPU there is nothing to free.
    async def wake_up(self, tags: list[str] | None = None) -> None: ...
    async def sleep(self) -> None: ...
    async def clear_kv_cache(self) -> None: ...
    async def release_kv_cache(self) -> None: ...
    async def resume_kv_cache(self) -> None: ...
    async def wait_for_requests_to_drain(self) -> None: ...
    async def start_profile(self, **kwargs: Any) -> None: ...
    async def stop_profile(self) -> None: ...


@dataclass(frozen=True)
class RolloutLimits:
    """The rollout config's lengths verl's vLLM server checks requests against (``max_model_len`` None: the model's)."""

    prompt_length: int = 512
    response_length: int = 512
    max_model_len: int | None = None

    def resolved(self, model_max: int | None) -> ResolvedLimits:
        """As verl's ``_validate_configs``: unset means the model's context; more than it is an error."""
        if self.max_model_len is None:
            if model_max is None:
                raise ValueError("set actor_rollout_ref.rollout.max_model_len (the model config has no context length)")
            return ResolvedLimits(self.prompt_length, self.response_length, model_max)
        if model_max is not None and self.max_model_len > model_max:
            raise ValueError(
                f"max_model_len ({self.max_model_len}) should be less than or equal to "
                f"max_position_embeddings ({model_max})"
            )
        return ResolvedLimits(self.prompt_length, self.response_length, self.max_model_len)


@dataclass(frozen=True)
class ResolvedLimits:
    prompt_length: int
    response_length: int
    max_model_len: int


def max_position_embeddings(config: Any) -> int | None:
    """The model's context length (a VL model keeps it in its text config)."""
    for part in (config, getattr(config, "text_config", None)):
        value = getattr(part, "max_position_embeddings", None) if part is not None else None
        if isinstance(value, int):
            return value
    return None


def turn_end_token_id(tokenizer: Any) -> int:
    """The token the chat template closes an assistant turn with (``<|im_end|>`` for ChatML)."""
    marker = "GEN_SEARCHER_MARK"
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    after = text[text.rindex(marker) + len(marker) :]
    ids = tokenizer.encode(after, add_special_tokens=False)
    if not ids:
        raise ValueError("the chat template writes nothing after an assistant turn (no end-of-turn token)")
    return int(ids[0])


def banned_token_ids(tokenizer: Any, processor: Any, config: Any) -> list[int]:
    """What verl's vLLM server masks: the image/video placeholders and every id past the tokenizer's vocabulary."""
    vocab = getattr(getattr(config, "text_config", config), "vocab_size", None) or len(tokenizer)
    banned = {int(config.image_token_id)}
    if getattr(config, "video_token_id", None) is not None:
        banned.add(int(config.video_token_id))
    for attribute in ("image_token", "video_token"):
        token = getattr(processor, attribute, None)
        if isinstance(token, str):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id >= 0:
                banned.add(token_id)
    banned |= set(range(len(tokenizer), int(vocab)))
    return sorted(banned)


def engine_options(engine_kwargs: Any) -> dict[str, Any]:
    """This rollout's ``engine_kwargs.vllm_double`` (only ``script``); a misspelt key is refused."""
    options = dict((engine_kwargs or {}).get(NAME) or {})
    unknown = set(options) - {"script"}
    if unknown:
        raise ValueError(f"unknown engine_kwargs.{NAME} keys: {sorted(unknown)} (known: script)")
    return options


class VllmDoubleReplica(RolloutReplica):
    """verl's rollout replica for :class:`VllmDoubleServer`: one server actor, no GPU."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        options = engine_options(self.config.engine_kwargs)
        model_path = self.model_config.local_path if hasattr(self.model_config, "local_path") else None
        model_path = model_path or self.model_config.path
        limits = RolloutLimits(
            prompt_length=int(self.config.prompt_length),
            response_length=int(self.config.response_length),
            max_model_len=int(self.config.max_model_len) if self.config.max_model_len else None,
        )
        server: Any = (
            ray.remote(VllmDoubleServer)
            .options(name=server_actor_name(self.replica_rank), num_cpus=0, max_concurrency=self.max_concurrency)
            .remote(
                str(model_path),
                options.get("script"),
                bool(self.model_config.get("trust_remote_code", False)),
                limits=limits,
                load_format=str(self.config.load_format),
                seed=int(self.config.get("seed", 0) or 0),
            )
        )
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{NAME}-{self.replica_rank}"


class VllmDoubleAdapter(BaseRollout):
    """In the hybrid actor worker: sends the actor's weights to this replica's :class:`VllmDoubleServer`."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        per_replica = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank // per_replica if replica_rank == -1 else replica_rank
        self.sends_weights = rank % per_replica == 0
        self.server: Any = None

    async def resume(self, tags: list[str]) -> None: ...

    async def release(self) -> None: ...

    async def update_weights(self, weights: Any, wire_format: str = "named_tensors", **kwargs: Any) -> None:
        if wire_format != "named_tensors":
            raise ValueError(f"vllm_double takes named tensors, not {wire_format!r}")
        collected = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights}
        if not self.sends_weights:
            return
        if self.server is None:
            self.server = ray.get_actor(server_actor_name(self.replica_rank))
        await self.server.load_weights.remote(collected, kwargs.get("global_steps"))


def register() -> None:
    """Add ``vllm_double`` to verl's replica registry and its rollout-class table (idempotent)."""
    RolloutReplicaRegistry.register(NAME, lambda: VllmDoubleReplica)
    rollout_base._ROLLOUT_REGISTRY[(NAME, "async")] = f"{__name__}.VllmDoubleAdapter"


register()
