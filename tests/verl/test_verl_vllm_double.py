"""``vllm_double``, the CPU test double for verl's vLLM rollout server, on its own (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.verl.conftest import build_tiny_vl_model

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPLY = '<tool_call>{"name": "search", "arguments": {"queries": ["Quorvath Bridge"]}}</tool_call>'


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vl_model(tmp_path_factory.mktemp("vllm-double"))


def chat_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_script_picks_by_prompt_then_turn_round_robin() -> None:
    from verl_recipes.cpu.vllm_double import ScriptedReplies

    script = ScriptedReplies.parse({"turns": [["a"]], "rules": [{"when": "Bridge 1", "turns": [["x"], ["y", "z"]]}]})
    assert [script.next(1, "Bridge 1") for _ in range(3)] == ["y", "z", "y"]
    assert script.next(0, "Bridge 1") == "x" and script.next(0, "other") == "a"
    assert script.next(1, "other") is None  # past the script: the model samples
    with pytest.raises(ValueError, match="at least one reply per turn"):
        ScriptedReplies.parse({"turns": [[]]})


def test_engine_options_refuse_a_misspelt_key() -> None:
    from verl_recipes.cpu.vllm_double import engine_options

    assert engine_options({"vllm": {}, "vllm_double": {"script": "s.json"}}) == {"script": "s.json"}
    assert engine_options({}) == {}
    with pytest.raises(ValueError, match=r"unknown engine_kwargs.vllm_double keys: \['scirpt'\]"):
        engine_options({"vllm_double": {"scirpt": "s.json"}})


async def test_scripted_turns_carry_the_models_own_log_probs(model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from verl_recipes.cpu.vllm_double import VllmDoubleServer

    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [[REPLY], ["done"]]}))
    server = VllmDoubleServer(str(model_dir), str(script))
    first = [{"role": "system", "content": "You are a research agent."}, {"role": "user", "content": "Draw it."}]
    prompt = chat_ids(server.tokenizer, first)
    out = await server.generate(
        prompt_ids=prompt, sampling_params={"temperature": 1.0, "max_tokens": 256, "logprobs": True}, request_id="r1"
    )
    end = server.tokenizer.convert_tokens_to_ids("<|im_end|>")  # the chat template's end of an assistant turn
    assert server.tokenizer.decode(out.token_ids) == REPLY + "<|im_end|>" and out.token_ids[-1] == end

    model = Qwen2VLForConditionalGeneration.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + out.token_ids])).logits[0, len(prompt) - 1 : -1]
    logits[..., server.banned_ids] = float("-inf")  # as verl's vLLM server masks them
    expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(out.token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=1e-4)

    # The next turn (one assistant reply in the prompt) gets the script's next turn; no log-probs unless asked.
    second = [*first, {"role": "assistant", "content": REPLY}, {"role": "tool", "content": "nothing"}]
    out = await server.generate(chat_ids(server.tokenizer, second), {"max_tokens": 64}, "r2")
    assert server.tokenizer.decode(out.token_ids) == "done<|im_end|>" and out.log_probs is None
    out = await server.generate(prompt, {"max_tokens": 1}, "r3")  # cut at max_tokens, without an end token
    assert len(out.token_ids) == 1 and out.token_ids[0] != end


async def test_images_must_match_their_tokens(model_dir: Path) -> None:
    from verl_recipes.cpu.vllm_double import VllmDoubleServer

    server = VllmDoubleServer(str(model_dir))
    image = Image.new("RGB", (56, 56), (200, 40, 40))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Draw it."}]}]
    text = server.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    expanded = server.processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist()
    params = {"max_tokens": 4, "temperature": 1.0, "logprobs": True}
    out = await server.generate(expanded, dict(params), "r", image_data=[image])
    assert 0 < len(out.token_ids) <= 4 and len(out.log_probs) == len(out.token_ids)
    with pytest.raises(ValueError, match="image tokens"):
        await server.generate(expanded, {"max_tokens": 4}, "r", image_data=[image, image])
    with pytest.raises(ValueError, match="no image was sent"):
        await server.generate(expanded, {"max_tokens": 4}, "r")
    with pytest.raises(ValueError, match="does not take videos"):
        await server.generate(expanded, {"max_tokens": 4}, "r", image_data=[image], video_data=[image])
