"""MCP tool schemas and results in the shapes verl accepts (no verl import here).

verl's tool schema allows only ``type``, ``description`` and ``enum`` per
parameter, so MCP input schemas are flattened: ``$ref`` resolved, ``anyOf``/``oneOf``
collapsed to plain types, array item types and defaults folded into the
description. Tool results are split into text (kept within a budget), decoded
PIL images and notes about anything that cannot be shown.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mcp_types

if TYPE_CHECKING:
    from PIL import Image


_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"unresolvable $ref {ref!r}")
        node = node[part]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref {ref!r} does not point to a schema")
    return node


def _plain(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """Reduce one property schema to ``{"type", "description"?, "enum"?, "items_type"?, "default"?}``."""
    if depth > 16:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    out: dict[str, Any] = {}
    for key in ("description", "title", "default"):
        if key in schema:
            out[key] = schema[key]
    if "$ref" in schema:
        inner = _plain(_resolve_ref(schema["$ref"], root), root, depth + 1)
        return {**inner, **{k: v for k, v in out.items() if k != "title"}} if out else inner
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            branches = [
                _plain(b, root, depth + 1) for b in schema[combo] if isinstance(b, Mapping) and b.get("type") != "null"
            ]
            types: list[str] = []
            enum: list[Any] = []
            for b in branches:
                for t in b["type"] if isinstance(b["type"], list) else [b["type"]]:
                    if t not in types:
                        types.append(t)
                enum.extend(v for v in b.get("enum") or () if v not in enum)
            merged: dict[str, Any] = {"type": types[0] if len(types) == 1 else (types or "string")}
            if enum and all(b.get("enum") for b in branches):
                merged["enum"] = enum
            for b in branches:
                if "items_type" in b:
                    merged["items_type"] = b["items_type"]
                if "description" in b and "description" not in out:
                    out["description"] = b["description"]
            return {**merged, **out}
    raw_type = schema.get("type")
    if isinstance(raw_type, list):
        kinds = [t for t in raw_type if t != "null"]
        typ: str | list[str] = kinds[0] if len(kinds) == 1 else (kinds or "string")
    elif isinstance(raw_type, str) and raw_type != "null":
        typ = raw_type
    elif "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else list(schema["enum"])
        typ = _type_of(values[0]) if values else "string"
    elif "properties" in schema:
        typ = "object"
    elif "items" in schema:
        typ = "array"
    else:
        typ = "string"
    out["type"] = typ
    if "const" in schema:
        out["enum"] = [schema["const"]]
    elif "enum" in schema:
        out["enum"] = list(schema["enum"])
    if typ == "array" and isinstance(schema.get("items"), Mapping):
        item = _plain(schema["items"], root, depth + 1)
        out["items_type"] = item["type"] if isinstance(item["type"], str) else "/".join(item["type"])
    return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def flatten_input_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An MCP tool's JSON input schema as verl's ``OpenAIFunctionParametersSchema`` dict.

    Each property keeps only ``type``, ``description`` and ``enum``. ``$ref`` is
    resolved, ``anyOf``/``oneOf`` collapse to their non-null type (a list of
    types when several remain), an array's item type and a default value are
    folded into the description so the model still sees them.
    """
    if schema.get("type", "object") != "object":
        raise ValueError(f"a tool's input schema must be an object, got {schema.get('type')!r}")
    properties: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            raise ValueError(f"property {name!r} has no schema")
        plain = _plain(prop, schema)
        parts = [str(plain.get("description") or "").strip()]  # titles are auto-generated noise
        if "items_type" in plain:
            parts.append(f"A list of {plain['items_type']} values.")
        if plain.get("default") is not None:
            parts.append(f"Default: {plain['default']!r}.")
        entry: dict[str, Any] = {"type": plain["type"]}
        description = " ".join(p for p in parts if p)
        if description:
            entry["description"] = description
        if plain.get("enum"):
            entry["enum"] = plain["enum"]
        properties[name] = entry
    required = [r for r in schema.get("required") or [] if r in properties]
    return {"type": "object", "properties": properties, "required": required}


def tool_schema_dict(tool: mcp_types.Tool) -> dict[str, Any]:
    """verl's OpenAI-style tool schema (as a plain dict) for one MCP tool."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": (tool.description or tool.title or tool.name).strip(),
            "parameters": flatten_input_schema(tool.input_schema or {"type": "object"}),
        },
    }


def decode_image(data: str, media_type: str | None = None) -> Image.Image:
    """Base64 image content -> RGB PIL image (``ValueError`` when it is not an image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(data, validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"image content ({media_type or 'unknown type'}) does not decode: {exc}") from None
    return image.convert("RGB")


def clip_text(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` characters with a visible marker saying how much was left out."""
    if budget <= 0 or len(text) <= budget:
        return text
    marker = f"\n…[truncated {len(text) - budget} characters]"
    return text[: max(0, budget - len(marker))] + marker


def result_parts(result: mcp_types.CallToolResult) -> tuple[list[str], list[Image.Image], list[str]]:
    """Split a tool result into text pieces, decoded images and notes about content that was skipped."""
    texts: list[str] = []
    images: list[Image.Image] = []
    notes: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            try:
                images.append(decode_image(block.data, block.mime_type))
            except ValueError as exc:
                notes.append(str(exc))
        elif isinstance(block, mcp_types.ResourceLink):
            label = block.name or block.title or str(block.uri)
            texts.append(f"[resource {label}: {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                texts.append(resource.text)
            else:
                notes.append(f"binary resource {resource.uri} not shown")
        else:
            notes.append(f"{getattr(block, 'type', type(block).__name__)} content not shown")
    return texts, images, notes
