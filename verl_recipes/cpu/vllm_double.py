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
rollout and actor log-probs stay comparable. Unscripted turns are sampled from the model.

Imported by verl in every process through ``VERL_USE_EXTERNAL_MODULES`` (``gen-searcher
train grpo --device cpu`` sets it), which registers the name with verl's two rollout registries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
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

    def __init__(self, turns: list[list[str]], rules: list[tuple[str, ScriptedReplies]] | None = None) -> None:
        if not turns or not all(isinstance(t, list) and t and all(isinstance(r, str) for r in t) for t in turns):
            raise ValueError('a vllm_double script is {"turns": [[reply, ...], ...]} with at least one reply per turn')
        self.turns = turns
        self.rules = rules or []
        self.served = [0] * len(turns)

    @classmethod
    def parse(cls, data: Any) -> ScriptedReplies:
        if not isinstance(data, dict):
            raise ValueError("a vllm_double script is a JSON object")
        rules = [(str(rule["when"]), cls.parse(rule)) for rule in data.get("rules", [])]
        return cls(data.get("turns"), rules)  # type: ignore[arg-type]

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


class VllmDoubleServer:
    """A Hugging Face model on CPU behind vLLM's token-in/token-out ``generate`` (one per replica)."""

    def __init__(self, model_path: str, script: str | None = None, trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        self.processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_path, dtype=torch.float32, trust_remote_code=trust_remote_code
        ).eval()
        self.image_token_id = self.model.config.image_token_id
        self.assistant_ids = self.tokenizer.encode("<|im_start|>assistant", add_special_tokens=False)
        self.stop_ids = self._stop_ids()
        self.script = ScriptedReplies.load(script) if script else None
        self.lock = asyncio.Lock()
        self.global_steps: int | None = None
        self.weight_updates = 0
        self.requests = 0

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

    def _log_probs(self, ids: list[int], start: int, vision: dict[str, Any], temperature: float) -> list[float]:
        """Log-probs of ``ids[start:]`` given what precedes them, with logits scaled as verl's actor does."""
        import torch

        with torch.no_grad():
            logits = self.model(**self._model_inputs(ids, vision)).logits[0, start - 1 : -1].float()
        scaled = torch.log_softmax(logits / max(temperature, 1e-6), dim=-1)
        return scaled.gather(-1, torch.tensor(ids[start:]).unsqueeze(-1)).squeeze(-1).tolist()

    def _sample(self, ids: list[int], vision: dict[str, Any], params: dict[str, Any], limit: int) -> list[int]:
        import torch

        temperature = float(params.get("temperature", 1.0))
        with torch.no_grad():
            out = self.model.generate(
                **self._model_inputs(ids, vision),
                max_new_tokens=limit,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=float(params.get("top_p", 1.0)),
                top_k=int(params.get("top_k", -1)) if int(params.get("top_k", -1)) > 0 else None,
                eos_token_id=sorted(self.stop_ids) or None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return out[0, len(ids) :].tolist()

    def _generate(self, prompt_ids: list[int], params: dict[str, Any], images: list[Any]) -> TokenOutput:
        limit = int(params.get("max_tokens") or params.get("max_new_tokens") or 64)
        vision = self._vision_inputs(prompt_ids, images)
        reply = None
        if self.script:
            reply = self.script.next(self._turn(prompt_ids), self.tokenizer.decode(prompt_ids))
        if reply is not None:
            response = self.tokenizer.encode(reply, add_special_tokens=False)[:limit]
            if len(response) < limit and self.stop_ids:
                response.append(min(self.stop_ids))
        else:
            response = self._sample(prompt_ids, vision, params, limit)
        log_probs = self._log_probs(
            prompt_ids + response, len(prompt_ids), vision, float(params.get("temperature", 1.0))
        )
        return TokenOutput(
            token_ids=response,
            log_probs=log_probs if params.get("logprobs", True) else None,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        **kwargs: Any,
    ) -> TokenOutput:
        """vLLM's ``generate``: token ids (and images) in, response token ids and log-probs out."""
        if video_data:
            raise ValueError("vllm_double does not take videos")
        async with self.lock:
            self.requests += 1
            return await asyncio.to_thread(
                self._generate, list(prompt_ids), dict(sampling_params), list(image_data or [])
            )

    async def load_weights(self, weights: dict[str, Any], global_steps: int | None = None) -> int:
        """Replace the model's weights with the actor's (every name must be known); returns how many."""
        import torch

        async with self.lock:
            params = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
            unknown = sorted(set(weights) - set(params))
            if unknown:
                raise KeyError(f"vllm_double got weights the model does not have: {unknown[:5]}")
            with torch.no_grad():
                for name, tensor in weights.items():
                    params[name].copy_(tensor.to(params[name].dtype))
            self.global_steps = global_steps
            self.weight_updates += 1
            return len(weights)

    async def stats(self) -> dict[str, Any]:
        """What the tests read: requests served, weight updates, the step of the last update."""
        return {"requests": self.requests, "weight_updates": self.weight_updates, "global_steps": self.global_steps}

    # The control calls verl's trainer and checkpoint manager make; on CPU there is nothing to free.
    async def wake_up(self) -> None: ...
    async def sleep(self) -> None: ...
    async def abort_all_requests(self, reject_request: bool = False) -> None: ...
    async def resume_generation(self) -> None: ...
    async def clear_kv_cache(self) -> None: ...
    async def release_kv_cache(self) -> None: ...
    async def resume_kv_cache(self) -> None: ...
    async def start_profile(self, **kwargs: Any) -> None: ...
    async def stop_profile(self) -> None: ...


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
        server: Any = (
            ray.remote(VllmDoubleServer)
            .options(name=server_actor_name(self.replica_rank), num_cpus=0, max_concurrency=self.max_concurrency)
            .remote(str(model_path), options.get("script"), bool(self.model_config.get("trust_remote_code", False)))
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
