"""Typed final output through a ``final_answer`` tool whose arguments are the output type."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import ConfigError
from ..prompts.schema import tool_declaration

FINAL_ANSWER = "final_answer"


class OutputTool:
    """Declares ``final_answer`` and validates its arguments into the output type.

    A pydantic model's fields are the tool's arguments; any other type (``int``, a dataclass,
    ``list[str]``, ``str``) is wrapped in a single argument (``answer``).
    """

    def __init__(self, output_type: Any = str) -> None:
        self.output_type = output_type
        self.wrapped = not (isinstance(output_type, type) and issubclass(output_type, BaseModel))
        try:
            self._adapter: TypeAdapter[Any] = TypeAdapter(output_type)
            schema = self._adapter.json_schema()
        except Exception as e:  # pydantic raises several error types for unsupported types
            raise ConfigError(
                f"output_type {output_type!r} cannot be validated by pydantic ({e}); "
                "use a pydantic model, a dataclass or a plain type."
            ) from e
        if self.wrapped:
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}
            if defs:
                schema["$defs"] = defs
        schema.pop("title", None)
        self.parameters = schema
        what = "the final answer" if output_type is str else "the final result"
        self.description = (
            f"Finish the task: give {what}. Call it exactly once, when the work is done, "
            "instead of writing the answer as text."
        )

    def declaration(self) -> dict[str, Any]:
        return tool_declaration(FINAL_ANSWER, self.description, self.parameters)

    def accept(self, arguments: dict[str, Any]) -> tuple[Any, str | None]:
        """(value, None) when valid, else (None, a message the model can act on)."""
        data = arguments.get("answer") if self.wrapped else arguments
        if self.wrapped and "answer" not in arguments:
            return None, "final_answer needs the argument 'answer'."
        try:
            return self._adapter.validate_python(data), None
        except ValidationError as e:
            lines = [
                f"- {'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                for err in e.errors(include_url=False)
            ]
            return None, "final_answer was rejected; fix these and call it again:\n" + "\n".join(
                lines
            )
