"""The render area's settings: the ``[render]`` section and the root the render server loads."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, SecretStr

from gen_searcher_core.config import ConfigRoot
from gen_searcher_core.host_policy import AllowedHosts
from safe_io.settings import FetchSettings, ImageSettings


class RenderSettings(BaseModel):
    backend: str = Field(
        "none", description="none | diffusers | http | openai, or a plugin's name (gen_searcher.renderers)"
    )
    model: str | None = Field(None, description="Qwen-Image id or folder (diffusers: text-only; openai: model name)")
    edit_model: str | None = Field(None, description="Qwen-Image-Edit-2509 id or folder (renders with references)")
    url: str | None = Field(None, description="render server (http) or images API base URL (openai, e.g. .../v1)")
    api_key: SecretStr | None = Field(None, description="key sent to the render service (openai: or OPENAI_API_KEY)")
    device: str | None = Field(None, description="diffusers device; default cuda when present, else cpu")
    timeout_s: float = Field(600.0, description="time limit of one render")
    dtype: str | None = Field(None, description="bfloat16 | float16 | float32; default bf16 on GPU, fp32 on CPU")
    lora: str | None = Field(None, description="LoRA for the text-only model (folder, id or .safetensors)")
    edit_lora: str | None = Field(None, description="LoRA for the edit model (e.g. a Lightning LoRA)")
    lora_scale: float = Field(1.0, description="strength of the fused LoRA")
    compile: bool = Field(False, description="torch.compile the transformer blocks")
    cpu_offload: bool = Field(False, description="model CPU offload for small GPUs")
    steps: int | None = Field(None, description="render tool default steps; none: 50 text-only, 40 edit")
    true_cfg_scale: float = Field(4.0, description="true classifier-free guidance scale")
    openai_extra_params: bool = Field(False, description="send seed/steps/CFG to the images API (our server)")


class LogSettings(BaseModel):
    """The ``[server]`` key the render server shares with the tool server."""

    log_level: str = "INFO"


class RenderConfig(ConfigRoot):
    """What the render area reads from the shared settings: render, fetch limits, images, log level, OpenAI key."""

    render: RenderSettings = Field(default_factory=RenderSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    # With images.url set, references may be given as image://{id} and results are stored there (shared store).
    images: ImageSettings = Field(default_factory=ImageSettings)
    server: LogSettings = Field(default_factory=LogSettings)
    allowed_hosts: AllowedHosts  # the same GEN_SEARCHER_ALLOWED_HOSTS as the tool server
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))
