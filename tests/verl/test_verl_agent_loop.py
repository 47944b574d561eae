"""The ``gen_searcher`` agent loop: full episodes with a scripted token generator and the real tool server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gen_searcher_core.episode_record import EpisodeRecord
from tests.support.loopback import free_port
from tests.verl.conftest import ScriptedGenerator, agent_loop_kwargs, compose_verl

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROMPT = "Draw the Quorvath Bridge during the Velmora lantern festival."

SEARCH = '<think>Who built it?</think><tool_call>{"name": "search", "arguments": {"queries": ["Quorvath Bridge"]}}</tool_call>'  # noqa: E501 - protocol text kept verbatim
IMAGES = '<think>Find photos.</think><tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", "top_k": 2}}</tool_call>'  # noqa: E501 - protocol text kept verbatim
ANSWER = (
    '<think>Enough.</think><answer>{"gen_prompt": "The copper-green Quorvath Bridge from the first reference image, '
    'lit by paper lanterns", "reference_images": [{"img_id": "IMG_001", "note": "the bridge at dusk"}]}</answer>'
)


def make_loop(
    tiny_vl: Any, generator: ScriptedGenerator, url: str, config_overrides: tuple[str, ...] = (), **settings: Any
) -> Any:
    from verl_recipes.agent_loop import GenSearcherAgentLoop

    config = compose_verl(
        "ppo_trainer",
        [
            "actor_rollout_ref.rollout.prompt_length=8192",
            "actor_rollout_ref.rollout.response_length=8192",
            *config_overrides,
        ],
    )
    return GenSearcherAgentLoop(**agent_loop_kwargs(tiny_vl, generator, config, tool_server_url=url, **settings))


def episode_record(output: Any) -> EpisodeRecord:
    """The episode record the loop returned (its JSON dump, read back strictly as the current version)."""
    return EpisodeRecord.model_validate(output.extra_fields["gen_searcher"])


def trained_text(tokenizer: Any, output: Any) -> str:
    ids = [t for t, m in zip(output.response_ids, output.response_mask, strict=True) if m]
    return tokenizer.decode(ids, skip_special_tokens=False)


def untrained_text(tokenizer: Any, output: Any) -> str:
    ids = [t for t, m in zip(output.response_ids, output.response_mask, strict=True) if not m]
    return tokenizer.decode(ids, skip_special_tokens=False)


async def test_registered_under_gen_searcher() -> None:
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    import verl_recipes.agent_loop  # noqa: F401

    assert _agent_loop_registry["gen_searcher"] == {"_target_": "verl_recipes.agent_loop.GenSearcherAgentLoop"}


async def test_clean_multi_hop_episode(tiny_vl: Any, tool_server: Any) -> None:
    from policy.prompts import build_system_prompt

    generator = ScriptedGenerator(tiny_vl.tokenizer, [SEARCH, IMAGES, ANSWER])
    loop = make_loop(tiny_vl, generator, tool_server.url)
    output = await loop.run({"temperature": 1.0, "logprobs": True}, raw_prompt=[], extra_info={"prompt": PROMPT})

    summary = episode_record(output)
    assert summary.termination == "answered" and summary.valid is True
    assert summary.model_calls == 3 and summary.tool_calls == 2 and summary.format_errors == 0
    assert [(r.img_id, r.note) for r in summary.references] == [("IMG_001", "the bridge at dusk")]
    (store_id,) = summary.generator_image_ids
    assert summary.references[0].store_id == store_id
    assert await tool_server.services.images.contains(store_id)

    # The prompt is the policy's own: its system prompt, then the request.
    first = generator.prompt_text(0)
    assert build_system_prompt() in first and PROMPT in first and first.endswith("<|im_start|>assistant\n")
    # The image search thumbnails reach the model as images, with episode ids.
    images = output.multi_modal_data["images"]
    assert len(images) == 2 and all(image.mode == "RGB" for image in images)
    assert [len(r["images"]) for r in generator.requests] == [0, 0, 2]
    third = generator.prompt_text(2)
    turns = third.split(PROMPT, 1)[1]
    assert turns.count("<tool_response>") == 2 and "IMG_001: " in third and "IMG_002: " in third
    assert store_id not in third  # the model never sees store ids
    assert third.count("<|vision_start|>") == 2

    # Loss only on what the model wrote; tool responses are masked out.
    trained = trained_text(tiny_vl.tokenizer, output)
    assert trained == "".join(reply + "<|im_end|>" for reply in (SEARCH, IMAGES, ANSWER))
    untrained = untrained_text(tiny_vl.tokenizer, output)
    assert "Quorvath Bridge at dusk" in untrained and "IMG_002" in untrained
    assert len(output.response_logprobs) == len(output.response_ids)
    assert all(lp == 0.0 for lp, m in zip(output.response_logprobs, output.response_mask, strict=True) if not m)
    # The token stream is the prompt of the last request plus the final answer turn.
    assert (
        output.prompt_ids + output.response_ids[: len(generator.requests[2]["prompt_ids"]) - len(output.prompt_ids)]
        == generator.requests[2]["prompt_ids"]
    )


async def test_the_rollouts_weight_versions_reach_verl(tiny_vl: Any, tool_server: Any) -> None:
    """verl's v1 trainer reads every sample's min/max weight version (it fails on a missing one)."""
    generator = ScriptedGenerator(tiny_vl.tokenizer, [SEARCH, IMAGES, ANSWER], weight_versions=[3, 3, 4])
    output = await make_loop(tiny_vl, generator, tool_server.url).run(
        {"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT}
    )
    assert output.extra_fields["min_global_steps"] == 3 and output.extra_fields["max_global_steps"] == 4
    assert episode_record(output).termination == "answered"


async def test_format_error_hallucination_and_too_long(tiny_vl: Any, tool_server: Any) -> None:
    hallucinated = (
        '<think>Go.</think><tool_call>{"name": "search", "arguments": {"queries": ["Velmora"]}}</tool_call>'
        "<tool_response>FAKE RESULTS</tool_response>"
    )
    rambling = "<think>" + "lantern bridge harbour " * 40
    generator = ScriptedGenerator(tiny_vl.tokenizer, ["no tags here at all", hallucinated, rambling, rambling])
    loop = make_loop(tiny_vl, generator, tool_server.url, max_turn_tokens=60, mask_invalid=True)
    output = await loop.run({"temperature": 1.0}, raw_prompt=[{"role": "user", "content": PROMPT}], extra_info={})

    summary = episode_record(output)
    assert summary.termination == "too_long" and summary.valid is False
    assert summary.format_errors == 1 and summary.prompt == PROMPT
    assert "Format error" in generator.prompt_text(1)
    third = generator.prompt_text(2)
    assert "FAKE RESULTS" not in third and "Velmora lantern festival" in third  # cut, then the real result
    assert "too long" in generator.prompt_text(3)
    assert all(r["sampling_params"]["max_tokens"] <= 60 for r in generator.requests)
    assert set(output.response_mask) == {0}  # mask_invalid: an episode without an answer trains nothing
    assert summary.loss_masked is True  # what the reward checks before flagging it masked


async def test_hallucinated_tool_response_is_cut_from_the_trained_tokens(tiny_vl: Any, tool_server: Any) -> None:
    hallucinated = SEARCH + "<tool_response>FAKE RESULTS</tool_response>"
    generator = ScriptedGenerator(tiny_vl.tokenizer, [hallucinated, IMAGES, ANSWER])
    loop = make_loop(tiny_vl, generator, tool_server.url)
    output = await loop.run({"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT})
    assert episode_record(output).termination == "answered"
    trained = trained_text(tiny_vl.tokenizer, output)
    assert "FAKE" not in trained and trained.startswith(SEARCH)
    assert "FAKE" not in tiny_vl.tokenizer.decode(output.response_ids)


async def test_forced_final_call(tiny_vl: Any, tool_server: Any) -> None:
    from policy.prompts import FORCED_FINAL_NOTICE

    generator = ScriptedGenerator(tiny_vl.tokenizer, [IMAGES, SEARCH, ANSWER])
    loop = make_loop(tiny_vl, generator, tool_server.url, max_calls=2)
    output = await loop.run({"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT})
    summary = episode_record(output)
    assert summary.termination == "forced_answer" and summary.valid
    assert FORCED_FINAL_NOTICE in generator.prompt_text(2) and FORCED_FINAL_NOTICE not in generator.prompt_text(1)
    assert output.num_turns == 6  # user, then assistant/user pairs, then the answer


async def test_unreachable_tool_server_ends_the_episode_as_an_error(tiny_vl: Any) -> None:
    generator = ScriptedGenerator(tiny_vl.tokenizer, [SEARCH])
    loop = make_loop(tiny_vl, generator, f"http://127.0.0.1:{free_port()}/mcp", tool_timeout_s=5)
    output = await loop.run({"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT})
    summary = episode_record(output)
    assert summary.termination == "error" and "tool session failed" in (summary.detail or "")
    assert summary.valid is False
    assert json.dumps(output.extra_fields["gen_searcher"])  # plain JSON for the reward


async def test_loop_built_from_the_launchers_agent_loop_config(tiny_vl: Any, tool_server: Any, tmp_path: Any) -> None:
    """The YAML `gen-searcher train grpo` writes is instantiated the way verl's AgentLoopWorker does it."""
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import ToolListWrap

    from verl_recipes.launch import agent_loop_yaml

    path = tmp_path / "agent_loops.yaml"
    path.write_text(agent_loop_yaml(tool_server.url, {"max_calls": 1, "mask_invalid": True}))
    (entry,) = OmegaConf.load(path)
    config = compose_verl("ppo_trainer", ["actor_rollout_ref.rollout.response_length=8192"])
    generator = ScriptedGenerator(tiny_vl.tokenizer, [IMAGES, ANSWER])
    loop = hydra.utils.instantiate(
        config=entry, **agent_loop_kwargs(tiny_vl, generator, config, tools=ToolListWrap([]))
    )
    assert loop.settings.max_calls == 1 and loop.settings.tool_server_url == tool_server.url
    output = await loop.run({"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT})
    assert episode_record(output).termination == "forced_answer"
    assert 1 in output.response_mask  # a valid answer keeps its loss even with mask_invalid
    assert episode_record(output).loss_masked is False


async def test_parallel_tool_calls_in_one_turn(tiny_vl: Any, tool_server: Any) -> None:
    """Results come back in call order; a call the server refuses is an error the model reads, not the episode's end."""
    calls = (
        '<think>All at once.</think><tool_call>{"name": "browse", "arguments": {"url": "http://127.0.0.1:9/"}}</tool_call>'
        '<tool_call>{"name": "search", "arguments": {"queries": ["Velmora"]}}</tool_call>'
        '<tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", "top_k": 1}}</tool_call>'
    )
    generator = ScriptedGenerator(tiny_vl.tokenizer, [calls, ANSWER])
    loop = make_loop(tiny_vl, generator, tool_server.url, parallel_tool_calls=True)
    output = await loop.run({"temperature": 1.0}, raw_prompt=[], extra_info={"prompt": PROMPT})
    summary = episode_record(output)
    assert summary.termination == "answered" and summary.tool_calls == 3 and summary.model_calls == 2
    browsed, searched, images = generator.prompt_text(1).split(PROMPT, 1)[1].split("<tool_response>")[1:]
    assert browsed.strip().startswith("Error from browse:") and "goal" in browsed  # the server's reason
    assert "lantern festival" in searched and "IMG_001: " in images
    assert len(generator.requests[1]["images"]) == 1


async def test_reward_in_the_loop_masks_failed_judgements(
    tiny_vl: Any, tool_server: Any, recording_render: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """score_in_loop: verl takes the loop's reward_score; a failed judgement zeroes the loss mask, not scored 0."""
    from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge
    from tests.verl.conftest import png_bytes

    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S", "0")
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_MAX_S", "0")
    render_url, calls = recording_render
    truth = tmp_path / "gt.png"
    truth.write_bytes(png_bytes((40, 160, 120)))
    sample = {
        "raw_prompt": [],
        "extra_info": {"prompt": PROMPT, "id": "k1"},
        "data_source": "knowgen",
        "reward_model": {"style": "judge", "ground_truth": str(truth)},
    }

    async def episode(judge: ScriptedJudge) -> Any:
        with serve_judge(judge) as judge_url:
            kwargs = {
                "render_mcp_url": render_url,
                "judge_base_url": judge_url,
                "judge_model": "m",
                "judge_attempts": 1,
            }
            overrides = tuple(f"+reward.custom_reward_function.reward_kwargs.{k}={v}" for k, v in kwargs.items())
            generator = ScriptedGenerator(tiny_vl.tokenizer, [IMAGES, ANSWER])
            loop = make_loop(tiny_vl, generator, tool_server.url, overrides, score_in_loop=True)
            return await loop.run({"temperature": 1.0}, **sample)

    good = ScriptedJudge()
    good.when("Grade the CANDIDATE", kscore_reply(1.0, 1.0, 1.0, 1.0))
    good.when("Generation prompt:", json.dumps({"score": 0.5}))
    output = await episode(good)
    summary = episode_record(output)
    assert output.reward_score == pytest.approx(0.75)  # (1 - 0.5) * 1.0 + 0.5 * 0.5
    assert output.extra_fields["reward_extra_info"]["text_score"] == 0.5
    assert calls[-1]["refs"] == list(summary.generator_image_ids) and calls[-1]["prompt"] == summary.gen_prompt
    assert 1 in output.response_mask and summary.loss_masked is False

    output = await episode(ScriptedJudge(default="not json"))
    summary = episode_record(output)
    assert output.extra_fields["reward_extra_info"]["failed"] == 1.0 and output.reward_score == 0.0
    assert set(output.response_mask) == {0} and summary.loss_masked is True  # grpo_masked leaves it out


WORKER_SCRIPT = """
import sys
import hydra
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry, ToolListWrap
from verl.utils import hf_processor, hf_tokenizer
from tests.verl.conftest import TinyVL, agent_loop_kwargs, compose_verl

loops_yaml, model = sys.argv[1], sys.argv[2]
assert "verl_recipes.agent_loop" not in sys.modules
for entry in OmegaConf.load(loops_yaml):  # what AgentLoopWorker.__init__ does
    _agent_loop_registry[entry.name] = entry
tiny = TinyVL(path=model, tokenizer=hf_tokenizer(model), processor=hf_processor(model))
config = compose_verl("ppo_trainer", [])
for episode in range(100):  # what AgentLoopWorker._run_agent_loop does per episode
    loop = hydra.utils.instantiate(
        config=_agent_loop_registry["gen_searcher"],
        **agent_loop_kwargs(tiny, None, config, tools=ToolListWrap([])),
    )
    settings = loop.settings
    print(episode, settings.tool_server_url, settings.max_calls, settings.score_in_loop, settings.mask_invalid)
"""


@pytest.mark.slow
def test_settings_reach_the_hundredth_episode_of_a_worker(tiny_vl: Any, tmp_path: Any) -> None:
    """The first episode imports this module; its registration must not replace the YAML's entry (and settings)."""
    import subprocess
    import sys
    from pathlib import Path

    from verl_recipes.launch import agent_loop_yaml

    path = tmp_path / "agent_loops.yaml"
    settings = {"max_calls": 3, "mask_invalid": True, "score_in_loop": True}
    path.write_text(agent_loop_yaml("http://127.0.0.1:1/mcp", settings))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT, str(path), str(tiny_vl.path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 100
    assert set(line.split(" ", 1)[1] for line in lines) == {"http://127.0.0.1:1/mcp 3 True True"}


async def test_vision_placeholders_in_text_reach_verls_postprocess_as_text(
    tiny_vl: Any, tool_server: Any, tmp_path: Any
) -> None:
    """`<|image_pad|>` written by the model (or in the task) must not become image tokens without an image.

    The episode runs through verl's own AgentLoopWorker (registry, instantiate, postprocess with
    multi_modal_inputs and M-RoPE positions), with the scripted generator as its LLM client.
    """
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    from verl_recipes.launch import agent_loop_yaml

    pad = "<|image_pad|>"
    loops = tmp_path / "agent_loops.yaml"
    loops.write_text(agent_loop_yaml(tool_server.url, {"max_calls": 4}))
    config = compose_verl(
        "ppo_trainer",
        [
            f"actor_rollout_ref.model.path={tiny_vl.path}",
            "actor_rollout_ref.rollout.name=vllm",
            "actor_rollout_ref.rollout.prompt_length=4096",
            "actor_rollout_ref.rollout.response_length=4096",
            f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops}",
        ],
    )
    rambling = f"<think>The photo {pad}{pad} shows it.</think>{pad}<answer>{{}}</answer>"
    generator = ScriptedGenerator(tiny_vl.tokenizer, [IMAGES, rambling, ANSWER])
    worker = AgentLoopWorker(config, llm_client=generator)
    trajectory = {"step": 0, "sample_index": 0, "rollout_n": 0, "validate": False}
    output = await worker._run_agent_loop(
        {"temperature": 1.0},
        trajectory,
        agent_name="gen_searcher",
        raw_prompt=[],
        extra_info={"prompt": f"{PROMPT} Keep the {pad} text."},
    )
    pad_id = tiny_vl.tokenizer.convert_tokens_to_ids(pad)
    grid = output.multi_modal_inputs["image_grid_thw"]
    assert grid.shape[0] == output.extra_fields["gen_searcher"]["image_count"] >= 1  # what image_search returned
    merge = 2 * 2  # spatial_merge_size ** 2
    assert int((output.input_ids == pad_id).sum()) == int(grid.prod(dim=-1).sum()) // merge
    assert episode_record(output).termination == "answered"
    assert output.position_ids.shape[1] == 4  # text + M-RoPE (t, h, w) positions were computed
