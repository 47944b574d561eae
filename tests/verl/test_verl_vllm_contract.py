"""``vllm_double`` against verl 0.9.1's real vLLM server: the same cases, side by side where they can run.

What runs against verl's own code here (no GPU, no vLLM):

* ``verl.workers.rollout.utils.get_vision_placeholder_token_ids``, the function verl's vLLM server
  bans tokens with, is called on the same tiny processor as the double's ban list;
* ``vLLMHttpServer``'s source (``verl/workers/rollout/vllm_rollout/vllm_async_server.py``) is read
  with ``ast``: its ``generate`` and control methods must have the double's parameters, and the
  lines behind each behaviour the double copies (context check, ``max_tokens`` default, log-probs
  only when asked, ``aborted``, the token ban, ``load_format``) must still be there, so an upgrade
  of verl that changes one fails here first.

What cannot run without a GPU: importing ``vLLMHttpServer`` itself (it imports vLLM, which needs
CUDA and is not in the CPU environment) and so calling it. Those cases (a sampled placeholder,
a prompt with no room left, an unknown sampling key, an abort, a partial weight sync) run against
the double below, and ``perf/gpu_check.py`` runs the GRPO step with the real server on a lent GPU.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.verl.conftest import build_tiny_vl_model

SERVER_SOURCE = (
    Path(importlib.util.find_spec("verl").origin).parent  # type: ignore[arg-type, union-attr]
    / "workers"
    / "rollout"
    / "vllm_rollout"
    / "vllm_async_server.py"
)
#: verl's server methods the trainer, router and checkpoint manager call on a rollout server.
CONTROL = (
    "generate",
    "wake_up",
    "sleep",
    "clear_kv_cache",
    "release_kv_cache",
    "resume_kv_cache",
    "start_profile",
    "stop_profile",
    "set_global_steps",
    "abort_all_requests",
    "resume_generation",
    "abort_request",
    "wait_for_requests_to_drain",
)


def verl_server_methods() -> dict[str, ast.AsyncFunctionDef]:
    tree = ast.parse(SERVER_SOURCE.read_text(encoding="utf-8"))
    server = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "vLLMHttpServer")
    return {n.name: n for n in server.body if isinstance(n, ast.AsyncFunctionDef)}


def parameters(node: ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    if args.kwarg:
        names.append("**" + args.kwarg.arg)
    return names


def double_parameters(method: Any) -> list[str]:
    names = []
    for p in inspect.signature(method).parameters.values():
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(prefix + p.name)
    return names


def test_the_double_has_verls_server_methods_with_the_same_parameters() -> None:
    from verl_recipes.cpu.vllm_double import VllmDoubleServer

    theirs = verl_server_methods()
    for name in CONTROL:
        assert name in theirs, f"verl's vLLM server no longer has {name}"
        assert double_parameters(getattr(VllmDoubleServer, name)) == parameters(theirs[name]), name


def test_the_behaviours_the_double_copies_are_still_verls() -> None:
    source = SERVER_SOURCE.read_text(encoding="utf-8")
    for line in (
        "max_possible_tokens = self.config.max_model_len - len(prompt_ids)",  # the context check
        "if max_possible_tokens < 1:",
        "self.config.response_length, self.config.prompt_length + self.config.response_length - len(prompt_ids)",
        "max_tokens = max(1, min(max_tokens, max_possible_tokens))",
        'sampling_params["logprobs"] = 0 if sampling_params.pop("logprobs", False) else None',
        "sampling_params = SamplingParams(max_tokens=max_tokens, **sampling_params)",  # unknown keys: TypeError
        '"banned_token_ids": get_vision_placeholder_token_ids(self.model_config.processor)',
        '"vocab_size": len(self.model_config.tokenizer)',  # the out-of-vocabulary tail
        'stop_reason="aborted"',
        '"load_format": self.config.load_format',
    ):
        assert line in source, f"verl's vLLM server changed: {line!r} is gone"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vl_model(tmp_path_factory.mktemp("vllm-contract"))


def chat_ids(tokenizer: Any, text: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


@pytest.mark.slow
def test_the_ban_list_is_verls(model_dir: Path) -> None:
    from transformers import AutoConfig
    from verl.utils import hf_processor, hf_tokenizer
    from verl.workers.rollout.utils import get_vision_placeholder_token_ids

    from verl_recipes.cpu.vllm_double import banned_token_ids

    processor, tokenizer = hf_processor(str(model_dir)), hf_tokenizer(str(model_dir))
    config = AutoConfig.from_pretrained(model_dir)
    ours = banned_token_ids(tokenizer, processor, config)
    assert set(get_vision_placeholder_token_ids(processor)) <= set(ours)
    assert set(ours) - set(get_vision_placeholder_token_ids(processor)) == set(
        range(len(tokenizer), config.text_config.vocab_size)
    )


@pytest.mark.slow
@pytest.mark.anyio
async def test_sampling_never_picks_a_vision_placeholder(model_dir: Path) -> None:
    from verl_recipes.cpu.vllm_double import VllmDoubleServer

    server = VllmDoubleServer(str(model_dir))
    favoured = server.tokenizer.convert_tokens_to_ids("<|image_pad|>")

    def prefer_the_placeholder(_module: Any, _inputs: Any, output: Any) -> Any:
        output[..., favoured] += 1e4  # the tiny model would pick it every time, unbanned
        return output

    server.model.lm_head.register_forward_hook(prefer_the_placeholder)
    out = await server.generate(chat_ids(server.tokenizer, "Draw it."), {"max_tokens": 8, "logprobs": True}, "r")
    assert out.token_ids and not set(out.token_ids) & set(server.banned_ids)
    assert all(lp > float("-inf") for lp in out.log_probs)
    with pytest.raises(ValueError, match="never samples"):  # nor may a scripted (teacher-forced) reply
        server._scripted("<|image_pad|>", 8)


@pytest.mark.slow
@pytest.mark.anyio
async def test_arguments_lengths_and_aborts_as_verls_server(model_dir: Path) -> None:
    from verl_recipes.cpu.vllm_double import RolloutLimits, VllmDoubleServer

    limits = RolloutLimits(prompt_length=64, response_length=16, max_model_len=80)
    server = VllmDoubleServer(str(model_dir), limits=limits)
    prompt = chat_ids(server.tokenizer, "Draw it.")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        await server.generate(prompt, {}, "r", images=[])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"\['temprature'\]"):
        await server.generate(prompt, {"temprature": 1.0}, "r")
    with pytest.raises(NotImplementedError, match=r"\['stop'\]"):
        await server.generate(prompt, {"stop": ["x"]}, "r")
    # No max_tokens: the response budget left (response_length, and no more than prompt + response).
    assert server.max_tokens(10, {}) == 16
    assert server.max_tokens(70, {}) == 10  # 64 + 16 - 70
    assert server.max_tokens(75, {"max_tokens": 100}) == 5  # clamped to max_model_len - prompt
    with pytest.raises(ValueError, match="leaves no room"):
        await server.generate([prompt[0]] * 80, {}, "r")
    out = await server.generate(prompt, {"ignore_eos": True, "temperature": 0}, "r")
    assert len(out.token_ids) == 16 and out.log_probs is None

    # abort_all_requests: late arrivals park until resume_generation, or come back aborted when rejecting.
    await server.abort_all_requests(reject_request=True)
    rejected = await server.generate(prompt, {"max_tokens": 2}, "r")
    assert rejected.stop_reason == "aborted" and rejected.token_ids == []
    await server.abort_all_requests()
    parked = asyncio.ensure_future(server.generate(prompt, {"max_tokens": 2}, "r"))
    await asyncio.sleep(0.2)
    assert not parked.done()
    await server.resume_generation()
    assert (await parked).stop_reason == "completed"
    assert (await server.stats())["aborted_requests"] == 1

    with pytest.raises(ValueError, match="less than or equal to max_position_embeddings"):
        VllmDoubleServer(str(model_dir), limits=RolloutLimits(max_model_len=10**7))


@pytest.mark.slow
@pytest.mark.anyio
async def test_random_start_weights_until_a_complete_sync(model_dir: Path) -> None:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from verl_recipes.cpu.vllm_double import VllmDoubleServer

    server = VllmDoubleServer(str(model_dir), load_format="dummy", seed=1)
    real = Qwen2VLForConditionalGeneration.from_pretrained(model_dir).state_dict()
    start = server.model.state_dict()
    assert any(not torch.equal(start[name], real[name].float()) for name in real)  # vLLM's dummy load

    partial = dict(list(real.items())[:-3])
    with pytest.raises(ValueError, match="partial weight sync"):
        await server.load_weights(partial, global_steps=0)
    assert (await server.stats())["weight_updates"] == 0
    assert await server.load_weights(dict(real), global_steps=0) == len(real)
    stats = await server.stats()
    assert stats["last_sync_tensors"] == len(real) and stats["weight_updates"] == 1 and stats["global_steps"] == 0
    assert all(torch.equal(server.model.state_dict()[name], real[name].float()) for name in real)
    out = await server.generate(chat_ids(server.tokenizer, "Draw it."), {"max_tokens": 1}, "r")
    assert out.extra_fields["global_steps"] == 0  # what verl's trainer reads as the weight version
    with pytest.raises(KeyError, match="does not have"):
        await server.load_weights({"not.a.weight": next(iter(real.values()))})
