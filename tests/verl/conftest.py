"""Fixtures of the verl recipe tests.

* ``tiny_vl``: a tiny Qwen2-VL-style tokenizer + processor (byte-level BPE trained on a
  few sentences, a ChatML chat template with image and tool turns), saved with
  ``save_pretrained`` and loaded back through verl's own ``hf_tokenizer``/``hf_processor``;
* ``toy_mcp``: a small MCP server on 127.0.0.1 whose tools exercise the bridge's edge
  cases (nested schemas, images, errors, long text) and which can demand a bearer token;
* ``recording_render``: an MCP server whose ``render`` tool records its arguments and
  whose ``image://`` resource serves a fixed PNG (the reward without a diffusion model);
* ``tool_server``: the real Gen-Searcher tool server (local backend over a tiny web);
* ``render_server``: the same with the diffusers renderer over tiny random-weight Qwen-Image pipelines;
* ``ppo_config``: verl's own ``ppo_trainer`` config composed with Hydra.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mcp_types
import pytest
from pydantic import BaseModel, Field

from tests.support import images as test_images
from tests.support.env import clear_settings_environment
from tests.support.loopback import serve_app
from tests.support.tiny_qwen_image import SPECIAL_TOKENS as SPECIAL
from tests.support.tiny_qwen_image import build_processor, train_byte_level_bpe

CORPUS = [
    "<think>I should search for the bridge first.</think>",
    '<tool_call>{"name": "search", "arguments": {"queries": ["Quorvath Bridge"]}}</tool_call>',
    '<answer>{"gen_prompt": "The bridge at dusk", "reference_images": [{"img_id": "IMG_001", "note": "towers"}]}</answer>',  # noqa: E501 - protocol text kept verbatim
    "<tool_response> Image search results for IMG_001 IMG_002 source page http 127.0.0.1",
    "You are a research agent. Search the web, read pages, find reference images.",
    "system user assistant tool queries top_k query url goal arguments name",
    "The Quorvath Bridge is a copper-green suspension bridge in Velmora. Ilsa Marendt red beret.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ {}[]():;,.'\"<>/_-",
]

CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- if tools -%}{{ '<|im_start|>system\\n# Tools\\n' }}"
    "{%- for tool in tools -%}{{ tool | tojson }}{{ '\\n' }}{%- endfor -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'tool' -%}"
    "{{ '<|im_start|>user\\n<tool_response>\\n' }}{{ render(message['content']) }}{{ '\\n</tool_response><|im_end|>\\n' }}"  # noqa: E501 - protocol text kept verbatim
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}{{ render(message['content']) }}"
    "{%- if message.get('tool_calls') -%}{%- for call in message['tool_calls'] -%}"
    "{{ '<tool_call>' }}{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}{{ '</tool_call>' }}"  # noqa: E501 - protocol text kept verbatim
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def build_tiny_vl(folder: Path) -> Path:
    """Write a tiny tokenizer + Qwen2-VL processor to ``folder`` (nothing downloaded)."""
    from tokenizers import decoders
    from transformers import PreTrainedTokenizerFast

    bpe = train_byte_level_bpe(CORPUS, vocab_size=600)
    bpe.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    processor = build_processor(tokenizer, min_pixels=28 * 28, max_pixels=56 * 56, chat_template=CHAT_TEMPLATE)
    folder.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tiny_model_config(tokenizer).save_pretrained(folder)
    return folder


def build_processor_folder(family: str, folder: Path) -> Path:
    """A tiny processor folder of ``family`` (``qwen3_vl``, ``qwen2_5_vl``, ``qwen2_vl``) as a user would bring
    one: the family's own processor classes around :func:`build_tiny_vl`'s tokenizer, no model inside."""
    from transformers import AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    staging = build_tiny_vl(folder.with_name(folder.name + "-tokenizer"))
    tokenizer = AutoTokenizer.from_pretrained(staging)
    patch = 16 if family == "qwen3_vl" else 14
    pixels = {"min_pixels": (2 * patch) ** 2, "max_pixels": (4 * patch) ** 2, "patch_size": patch}
    image_processor = Qwen2VLImageProcessor(**pixels)
    video_processor = (Qwen3VLVideoProcessor if family == "qwen3_vl" else Qwen2VLVideoProcessor)(**pixels)
    processor_class = {"qwen3_vl": Qwen3VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor, "qwen2_vl": Qwen2VLProcessor}
    processor = processor_class[family](
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    folder.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_model_config(tokenizer: Any) -> Any:
    """A tiny Qwen2-VL model config matching the tokenizer (verl reads it next to the processor)."""
    from verl_recipes.cpu.smoke import tiny_qwen2_vl_config

    return tiny_qwen2_vl_config(tokenizer)


@dataclass(frozen=True)
class TinyVL:
    path: Path
    tokenizer: Any
    processor: Any


@pytest.fixture(scope="session")
def tiny_vl(tmp_path_factory: pytest.TempPathFactory) -> TinyVL:
    from verl.utils import hf_processor, hf_tokenizer

    path = build_tiny_vl(tmp_path_factory.mktemp("tiny-vl"))
    return TinyVL(path=path, tokenizer=hf_tokenizer(str(path)), processor=hf_processor(str(path)))


def build_tiny_vl_model(folder: Path, seed: int = 0) -> Path:
    """:func:`build_tiny_vl` plus random weights (``save_pretrained``): a Qwen2-VL model verl can train."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    build_tiny_vl(folder)
    torch.manual_seed(seed)
    config = tiny_model_config(_load_tokenizer(folder))
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    return folder


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    return test_images.png_bytes(colour, size, stripe_every=8)


# ---------------------------------------------------------------- a toy MCP server


class Style(BaseModel):
    palette: Literal["warm", "cold"] = Field(description="Colour palette.")
    strength: float | None = None


@dataclass
class ToyServer:
    url: str
    token: str | None
    calls: list[str] = field(default_factory=list)


def toy_app(state: ToyServer) -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse

    server = MCPServer(name="toy")

    @server.tool(description="Repeat a text.")
    def echo(text: str, times: int = 1) -> str:
        state.calls.append("echo")
        return " ".join([text] * times)

    @server.tool(description="Draw swatches.")
    def swatches(
        colours: list[str], style: Style | None = None, mode: Literal["fast", "slow"] = "fast"
    ) -> mcp_types.CallToolResult:
        state.calls.append("swatches")
        palette = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
        content: list[Any] = [mcp_types.TextContent(type="text", text=f"{len(colours)} swatches ({mode})")]
        for name in colours:
            data = base64.b64encode(png_bytes(palette.get(name, (0, 0, 0)))).decode()
            content.append(mcp_types.ImageContent(type="image", data=data, mime_type="image/png"))
        content.append(mcp_types.ImageContent(type="image", data="bm90IGFuIGltYWdl", mime_type="image/png"))
        return mcp_types.CallToolResult(content=content, structured_content={"count": len(colours)})

    @server.tool(description="Always fails.")
    def broken() -> str:
        state.calls.append("broken")
        raise ToolError("the broken tool is broken")

    @server.tool(description="A long text.")
    def long_text(chars: int) -> str:
        state.calls.append("long_text")
        return "x" * chars

    app = server.streamable_http_app()

    class BearerOnly(BaseHTTPMiddleware):
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            if state.token and request.headers.get("authorization") != f"Bearer {state.token}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            return await call_next(request)

    app.add_middleware(BearerOnly)
    return app


@pytest.fixture
def toy_mcp() -> Iterator[ToyServer]:
    state = ToyServer(url="", token=None)
    with serve_app(toy_app(state)) as base:
        state.url = base + "/mcp"
        yield state


@pytest.fixture
def recording_render() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A small MCP server with a `render` tool that records its arguments and an `image://` resource."""
    from mcp.server.mcpserver import MCPServer

    calls: list[dict[str, Any]] = []
    server = MCPServer(name="render-recorder")

    @server.tool(description="Render an image.")
    def render(
        prompt: str,
        reference_image_ids: list[str] | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | None = None,
        steps: int | None = None,
    ) -> mcp_types.CallToolResult:
        calls.append({"prompt": prompt, "refs": reference_image_ids, "width": width, "steps": steps, "seed": seed})
        image = {"id": "img_00000000000000aa", "width": 64, "height": 48, "uri": "image://img_00000000000000aa"}
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text="rendered")], structured_content=image
        )

    @server.resource("image://{id}", name="image", mime_type="image/png")
    def image(id: str) -> bytes:
        return png_bytes((1, 2, 3), (64, 48))

    with serve_app(server.streamable_http_app()) as base:
        yield base + "/mcp", calls


# ---------------------------------------------------------------- the real tool server

PAGES = {
    "quorvath-bridge.html": (
        "Quorvath Bridge",
        "The Quorvath Bridge is a copper-green suspension bridge in the harbour town of Velmora, "
        "designed by the architect Ilsa Marendt and opened in 1931.",
        [("quorvath.png", "Quorvath Bridge at dusk, copper-green towers", (40, 160, 120))],
    ),
    "velmora-festival.html": (
        "Velmora lantern festival",
        "Every autumn the Velmora lantern festival fills the harbour with paper lanterns around the Quorvath Bridge.",
        [("lanterns.png", "Velmora lantern festival paper lanterns", (240, 180, 40))],
    ),
}


def write_site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, (title, text, images) in PAGES.items():
        figures = ""
        for file, alt, colour in images:
            (root / file).write_bytes(png_bytes(colour, (160, 120)))
            figures += f'<figure><img src="{file}" alt="{alt}" width="160" height="120"><figcaption>{alt}</figcaption></figure>'  # noqa: E501 - protocol text kept verbatim
        (root / name).write_text(
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"<p>{text}</p>{figures}<p>{text}</p></article></body></html>",
            encoding="utf-8",
        )


@pytest.fixture(scope="session")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    root = tmp_path_factory.mktemp("verl-site")
    write_site(root)
    with serve_app(Starlette(routes=[Mount("/", StaticFiles(directory=root))])) as url:
        yield url, root


@pytest.fixture(scope="session")
def tool_server(tmp_path_factory: pytest.TempPathFactory, site_url: tuple[str, Path]) -> Iterator[Any]:
    from search_tools.index import build_index
    from tests.support.tool_server import run_tool_server

    url, root = site_url
    work = tmp_path_factory.mktemp("verl-tool-server")
    index = build_index(root, work / "index.db", base_url=url + "/").path
    with run_tool_server(work, index=index) as server:
        yield server


@pytest.fixture(scope="session")
def render_server(tmp_path_factory: pytest.TempPathFactory, site_url: tuple[str, Path]) -> Iterator[Any]:
    """The real tool server with the diffusers renderer over tiny random-weight Qwen-Image pipelines."""
    from search_tools.index import build_index
    from tests.support.tiny_qwen_image import build_tiny_qwen_image, build_tiny_qwen_image_edit
    from tests.support.tool_server import run_tool_server

    url, root = site_url
    work = tmp_path_factory.mktemp("verl-render-server")
    models = work / "models"
    render = {
        "backend": "diffusers",
        "model": str(build_tiny_qwen_image(models)),
        "edit_model": str(build_tiny_qwen_image_edit(models)),
        "device": "cpu",
        "steps": 2,
    }
    index = build_index(root, work / "index.db", base_url=url + "/").path
    with run_tool_server(work, index=index, render=render) as server:
        _wait_for_the_render_models(server)
        yield server


def _wait_for_the_render_models(server: Any, limit_s: float = 600.0) -> None:
    """Return once the server's background model load is over.

    Loading a pipeline patches torch's parameter registration process-wide (empty weights), so a
    test that builds a model in this process meanwhile would get meta tensors.
    """
    deadline = time.monotonic() + limit_s
    while server.services.readiness() == "loading":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the render models did not load within {limit_s:.0f} s")
        time.sleep(0.1)


# ---------------------------------------------------------------- verl config


def compose_verl(config_name: str, overrides: list[str]) -> Any:
    """Compose one of verl's own trainer configs with Hydra (what ``python -m verl.trainer.…`` does)."""
    import verl
    from hydra import compose, initialize_config_dir

    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name, overrides=overrides)


def agent_loop_kwargs(tiny_vl: Any, server_manager: Any, config: Any, **extra: Any) -> dict[str, Any]:
    """The constructor arguments verl's ``AgentLoopWorker`` gives an agent loop, for ``config`` (ppo_trainer)."""
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    return {
        "trainer_config": DictConfigWrap(config),
        "server_manager": server_manager,
        "tokenizer": tiny_vl.tokenizer,
        "processor": tiny_vl.processor,
        "dataset_cls": RLHFDataset,
        "data_config": DictConfigWrap(config.data),
        "hf_model_type": "qwen2_vl",
        **extra,
    }


@pytest.fixture(autouse=True)
def _no_mcp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own MCP URL, token or other settings must not leak into these tests."""
    clear_settings_environment(monkeypatch)


# ---------------------------------------------------------------- a scripted token generator


class ScriptedGenerator:
    """Stands in for verl's ``server_manager``: replies to ``generate`` from a script, token in/token out.

    Each script entry is the reply text. A reply longer than the request's ``max_tokens`` is cut
    there without an end token (a truncated turn); otherwise the reply ends with ``<|im_end|>``.
    Every request is recorded. (A plain class: Hydra would turn a dataclass into a config.)
    """

    def __init__(self, tokenizer: Any, replies: list[str], weight_versions: list[int] | None = None) -> None:
        self.tokenizer = tokenizer
        self.replies = list(replies)
        # The weight version (global step) of each reply, as verl's LLMServerClient reports it.
        self.weight_versions = list(weight_versions or [])
        self.requests: list[dict[str, Any]] = []

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        self.requests.append(
            {
                "request_id": request_id,
                "prompt_ids": list(prompt_ids),
                "images": list(image_data or []),
                "sampling_params": dict(sampling_params),
            }
        )
        if not self.replies:
            raise AssertionError("the scripted generator ran out of replies")
        ids = self.tokenizer.encode(self.replies.pop(0), add_special_tokens=False)
        max_tokens = sampling_params.get("max_tokens")
        if max_tokens is not None and len(ids) >= max_tokens:
            ids = ids[:max_tokens]
        else:
            ids = [*ids, self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        logprobs = [-0.25] * len(ids) if sampling_params.get("logprobs") else None
        version = self.weight_versions.pop(0) if self.weight_versions else None
        extra = {"global_steps": version, "min_global_steps": version, "max_global_steps": version}
        return TokenOutput(token_ids=ids, log_probs=logprobs, stop_reason="completed", extra_fields=extra)

    def prompt_text(self, index: int) -> str:
        return self.tokenizer.decode(self.requests[index]["prompt_ids"], skip_special_tokens=False)
