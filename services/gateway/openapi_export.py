"""Write the gateway's merged OpenAPI to a file, the input of the generated SDK.

    python -m services.gateway.openapi_export sdk/openapi.json

The spec is built from default settings, whatever ATELIER_* says: every service
in-process and no plug-in services, so the output depends only on the code.
Building the app opens no database or broker connection.

Two corrections make the spec say what the API actually sends, so a generated
client can parse it:
- errors: FastAPI declares 422 as `HTTPValidationError` (`detail` a list), but every
  error is an RFC 9457 problem document (`detail` a string); a client generated from
  the former raises on any 422 and cannot read any other error. Each operation gets
  `4XX`/`5XX` problem+json responses instead.
- schemaless bodies (zip downloads, the SSE stream) get a string/binary schema, without
  which the generator returns nothing for them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.settings import Settings


class DefaultSettings(Settings):
    """Settings from the field defaults alone: no environment, no .env file."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Init arguments alone would not do: pydantic-settings merges dict values (extra_services)
        # from the environment into them.
        return (init_settings,)


def export_settings() -> Settings:
    return DefaultSettings()


PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "An RFC 9457 problem document: the body of every error response.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "title": "Type", "default": "about:blank"},
            "title": {"type": "string", "title": "Title"},
            "status": {"type": "integer", "title": "Status"},
            "detail": {"type": "string", "title": "Detail"},
            "instance": {"type": "string", "title": "Instance"},
            "errors": {"type": "array", "title": "Errors", "description": "What failed validation (422 only).",
                       "items": {"$ref": "#/components/schemas/ProblemFieldError"}},
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "title": "Location",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
        },
    },
}
PROBLEM_RESPONSES: dict[str, Any] = {
    status: {"description": description,
             "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for status, description in (("4XX", "The request was refused (problem document)."),
                                ("5XX", "The server or a backing service failed (problem document)."))
}
FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def describe_problem_responses(spec: dict[str, Any]) -> None:
    for item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses.update(PROBLEM_RESPONSES)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    taken = [name for name in PROBLEM_SCHEMAS if name in schemas]
    if taken:
        raise RuntimeError(f"a service already defines schemas named {taken}; rename them")
    schemas.update(PROBLEM_SCHEMAS)
    for name in FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    dangling = [name for name in FASTAPI_ERROR_SCHEMAS if f'"#/components/schemas/{name}"' in json.dumps(spec)]
    if dangling:
        raise RuntimeError(f"schemas still referenced after replacing the error responses: {dangling}")


def describe_schemaless_bodies(spec: dict[str, Any]) -> None:
    for item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            for response in item.get(method, {}).get("responses", {}).values():
                for media_type, media in response.get("content", {}).items():
                    if media.get("schema") or media_type.endswith("json"):
                        continue
                    text = media_type.startswith("text/")
                    media["schema"] = {"type": "string"} if text else {"type": "string", "format": "binary"}


def merged_openapi() -> dict[str, Any]:
    from services.gateway.app import create_app

    # A deep copy: the app caches its spec, and the served /openapi.json stays as it is.
    spec = json.loads(json.dumps(create_app(export_settings()).openapi()))
    describe_problem_responses(spec)
    describe_schemaless_bodies(spec)
    return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.gateway.openapi_export OUTPUT.json", file=sys.stderr)
        return 2
    output = Path(args[0])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(merged_openapi()), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
