"""Tools: typed functions the model can call.

::

    @tool
    def read_config(section: str, strict: bool = False) -> dict:
        '''Read one section of the project configuration.

        Args:
            section: Name of the section, e.g. "build".
            strict: Fail when the section is missing instead of returning {}.
        '''

The schema comes from the type hints (built by pydantic), the description from the docstring
summary, argument descriptions from the Google-style ``Args:`` section or from
``Annotated[T, Field(description=...)]``. A parameter annotated ``ToolContext`` (or named
``ctx``) is not part of the schema; it receives the workspace, the run's deps, the call id, an
``emit`` callback for progress events and the spill store.

Tools with state subclass ``Tool``: set ``name``, ``description``, an ``Args`` pydantic model and
implement ``async execute(args, ctx)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from .errors import InvalidArguments, ToolError
from .schema import describe_arguments, format_errors, validate_schema

if TYPE_CHECKING:
    from .spill import SpillStore
    from .workspace import Workspace

DepsT = TypeVar("DepsT")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ToolNotice:
    """Something people should know (e.g. "no sandbox available"); emitted through ctx.emit."""

    message: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class ToolMedia:
    """An image or audio clip a tool shows the model (placed after its tool response).

    ``data`` is the encoded file (PNG, JPEG, WAV, ...). The agent checks it against the model's
    modalities and the media limits; a refused one turns the result into an error.
    """

    kind: str  # "image" or "audio"
    name: str
    mime: str
    data: bytes = field(repr=False)

    @classmethod
    def of(cls, obj: Any) -> ToolMedia | None:
        """``obj`` as media: a ToolMedia, or anything with ``data``/``mime``/``name`` whose mime
        is image/* or audio/* (``gemma_agent.Image``/``Audio``); else None."""
        if isinstance(obj, ToolMedia):
            return obj
        data, mime = getattr(obj, "data", None), getattr(obj, "mime", None)
        if data is None and isinstance(getattr(obj, "data_b64", None), str):  # an Attachment
            import base64

            data = base64.b64decode(obj.data_b64)
        if not isinstance(data, bytes) or not isinstance(mime, str):
            return None
        kind = mime.partition("/")[0]
        if kind not in ("image", "audio"):
            return None
        return cls(kind, str(getattr(obj, "name", kind)), mime, data)


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """A tool's result with extras: the id of the full text in the spill store when the tool
    capped it itself, and images/audio the model sees after the tool response.

        return ToolOutput("chart.png, 640×480", media=[Image.from_path(path)])
    """

    content: Any
    spill_id: str | None = None
    media: tuple[Any, ...] = ()  # ToolMedia, or Image/Audio objects (see ToolMedia.of)


def _ignore(_event: object) -> None:
    return None


def _new_spill_store() -> SpillStore:
    from .spill import SpillStore

    return SpillStore()


@dataclass
class ToolContext(Generic[DepsT]):
    """What a running tool may use besides its arguments.

    Cancellation is the task's: the registry cancels the tool's task at its timeout or when the
    run is cancelled, so tools only need ``try/finally`` for cleanup.
    """

    workspace: Path
    deps: DepsT = None  # type: ignore[assignment]
    call_id: str = ""
    emit: Callable[[object], None] = _ignore
    spill: SpillStore = field(default_factory=lambda: _new_spill_store())
    # The agent run that made the call (agent.subagents.Parent), for tools that run agents
    # (the task tool, Agent.as_tool): the child inherits its engine, approvals and stream.
    parent: Any = None
    _workspace: Workspace | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace)

    @property
    def files(self) -> Workspace:
        """The confined view of the workspace (resolves and checks paths)."""
        if self._workspace is None:
            from .workspace import Workspace

            self._workspace = Workspace(self.workspace)
        return self._workspace

    def resolve(self, path: str | Path, *, must_exist: bool = False) -> Path:
        """Resolve a model-given path inside the workspace; raises ToolError when it escapes."""
        return self.files.resolve(path, must_exist=must_exist)


def tool_declaration(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI-style declaration, with the schema normalized for Gemma 4 by ``prompts``."""
    from ..prompts import tool_declaration as declare  # lazily: jinja2 loads only when needed

    return declare(name, description, parameters)


class Tool:
    """A callable the model can use. Subclass it for tools with state.

    ``timeout`` None means the registry's default; ``max_output_chars`` None means the
    registry's cap. ``shell_argument`` names the argument holding a shell command, which the
    approval policy inspects.
    """

    name: str = ""
    description: str = ""
    parameters: dict[str, Any]
    read_only: bool = False
    sequential: bool = False
    timeout: float | None = None
    max_output_chars: int | None = None
    shell_argument: str | None = None
    # Runs other tool calls, each approved on its own (a sub-agent): the approval policy lets
    # it start, plan mode allows it, and the calls it makes follow the run's mode.
    delegates: bool = False
    Args: ClassVar[type[BaseModel] | None] = None

    def __init__(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
        args_model: type[BaseModel] | None = None,
        read_only: bool | None = None,
        sequential: bool | None = None,
        timeout: float | None = None,
        max_output_chars: int | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description
        if read_only is not None:
            self.read_only = read_only
        if sequential is not None:
            self.sequential = sequential
        if timeout is not None:
            self.timeout = timeout
        if max_output_chars is not None:
            self.max_output_chars = max_output_chars
        self._args_model = args_model if args_model is not None else type(self).Args
        if parameters is not None:
            self.parameters = parameters
        elif self._args_model is not None:
            self.parameters = schema_of(self._args_model)
        elif not hasattr(self, "parameters"):
            self.parameters = {"type": "object", "properties": {}}
        if not self.description and type(self).__doc__ and type(self) is not Tool:
            self.description = clean_description(type(self).__doc__ or "")
        if not _NAME_RE.match(self.name or ""):
            raise ValueError(
                f"invalid tool name {self.name!r}: use letters, digits, '_', '-' or '.', "
                "starting with a letter or '_' (at most 64 characters)"
            )

    def declaration(self) -> dict[str, Any]:
        return tool_declaration(self.name, self.description, self.parameters)

    def reads_only(self, arguments: Mapping[str, Any]) -> bool:
        """Whether this call can change nothing (no checkpoint is taken before it). A tool
        whose effect depends on its arguments (a sub-agent's type) overrides it."""
        return self.read_only

    def validate(self, arguments: Mapping[str, Any]) -> Any:
        """Check the arguments; returns what ``execute`` receives. Raises InvalidArguments."""
        if not isinstance(arguments, Mapping):
            raise InvalidArguments(
                f"Invalid arguments for {self.name}: expected an object of named arguments, "
                f"got {type(arguments).__name__}. {describe_arguments(self.parameters)}"
            )
        if self._args_model is not None:
            try:
                return self._args_model.model_validate(dict(arguments))
            except ValidationError as exc:
                problems = [
                    (tuple(e["loc"]), e["type"], e["msg"], e.get("input"))
                    for e in exc.errors(include_url=False)
                ]
                raise InvalidArguments(
                    format_errors(self.name, problems, self.parameters)
                ) from None
        problems = validate_schema(self.parameters, dict(arguments))
        if problems:
            raise InvalidArguments(format_errors(self.name, problems, self.parameters))
        return dict(arguments)

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        """Do the work with validated arguments. Subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__}.execute")

    async def run(self, arguments: Mapping[str, Any], ctx: ToolContext[Any]) -> Any:
        """Validate and execute (without the registry's timeout, cap and error handling)."""
        return await self.execute(self.validate(arguments), ctx)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FunctionTool(Tool):
    """A tool made from a plain (sync or async) function by ``@tool``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        read_only: bool = False,
        sequential: bool = False,
        timeout: float | None = None,
        max_output_chars: int | None = None,
    ) -> None:
        self.fn = fn
        doc_description, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
        model, self._param_names, self._ctx_param = _model_from_signature(fn, arg_docs)
        self._is_async = inspect.iscoroutinefunction(fn)
        super().__init__(
            name=name or fn.__name__,
            description=description if description is not None else doc_description,
            args_model=model,
            read_only=read_only,
            sequential=sequential,
            timeout=timeout,
            max_output_chars=max_output_chars,
        )
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        kwargs = {param: getattr(args, attr) for attr, param in self._param_names.items()}
        if self._is_async:
            if self._ctx_param is not None:
                kwargs[self._ctx_param] = ctx
            return await self.fn(**kwargs)
        if self._ctx_param is not None:
            # The function runs in a worker thread: hand its events back to the loop's thread.
            loop = asyncio.get_running_loop()
            emit = ctx.emit

            def emit_threadsafe(event: object) -> None:
                loop.call_soon_threadsafe(emit, event)

            kwargs[self._ctx_param] = dataclasses.replace(ctx, emit=emit_threadsafe)
        result = await asyncio.to_thread(functools.partial(self.fn, **kwargs))
        if inspect.isawaitable(result):  # a sync function returning a coroutine
            return await result
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


F = TypeVar("F", bound=Callable[..., Any])


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    sequential: bool = False,
    timeout: float | None = None,
    max_output_chars: int | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    sequential: bool = False,
    timeout: float | None = None,
    max_output_chars: int | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function into a ``Tool`` (use as ``@tool`` or ``@tool(read_only=True, ...)``)."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            f,
            name=name,
            description=description,
            read_only=read_only,
            sequential=sequential,
            timeout=timeout,
            max_output_chars=max_output_chars,
        )

    return wrap(fn) if fn is not None else wrap


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return tool(obj)
    raise TypeError(f"not a tool: {obj!r} (pass a Tool or a function)")


# --- schema from a signature -------------------------------------------------------------------


def _is_context(annotation: Any) -> bool:
    if annotation is ToolContext:
        return True
    origin = get_origin(annotation)
    if origin is ToolContext:
        return True
    if origin is Annotated:
        return _is_context(get_args(annotation)[0])
    return isinstance(annotation, type) and issubclass(annotation, ToolContext)


def _has_description(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in get_args(annotation)[1:])


_RESERVED = set(dir(BaseModel))


def _model_from_signature(
    fn: Callable[..., Any], arg_docs: dict[str, str]
) -> tuple[type[BaseModel], dict[str, str], str | None]:
    """Build the arguments model; returns (model, {field attribute: parameter}, ctx parameter)."""
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise TypeError(f"cannot resolve the type hints of tool {fn.__name__!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    ctx_param: str | None = None
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(
                f"tool {fn.__name__!r}: *args/**kwargs cannot become a schema; name each argument"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool {fn.__name__!r}: positional-only parameters are not supported")
        annotation = hints.get(param.name, Any)
        if _is_context(annotation) or (param.name == "ctx" and param.name not in hints):
            ctx_param = param.name
            continue
        doc = arg_docs.get(param.name)
        if doc and not _has_description(annotation):
            annotation = Annotated[annotation, Field(description=doc)]
        default = ... if param.default is param.empty else param.default
        attr = param.name
        if attr in _RESERVED or attr.startswith("model_"):
            # A parameter named like a BaseModel attribute ("json", "schema", ...) gets an alias.
            attr = f"{param.name}__arg"
            fields[attr] = (annotation, Field(default, alias=param.name))
        else:
            fields[attr] = (annotation, default)
        names[attr] = param.name
    model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_arguments",
        __config__=ConfigDict(
            extra="forbid", populate_by_name=False, arbitrary_types_allowed=False
        ),
        **fields,
    )
    return model, names, ctx_param


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema of an arguments model, without pydantic's noise (titles)."""
    return _strip_titles(model.model_json_schema())


def _strip_titles(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and not in_properties and isinstance(value, str):
                continue
            out[key] = _strip_titles(value, in_properties=key in ("properties", "$defs"))
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


# --- Google-style docstrings -------------------------------------------------------------------

_SECTION_RE = re.compile(r"^(\w[\w ]*):\s*$")
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "kwargs"}
_DROP_SECTIONS = _ARG_SECTIONS | {"raises", "yields", "examples", "example"}
_ARG_RE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {argument: description})."""
    doc = inspect.cleandoc(doc)
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent = 0
    for line in doc.splitlines():
        match = _SECTION_RE.match(line)
        if match and not line.startswith(" "):
            section = match.group(1).strip().lower()
            current = None
            if section not in _DROP_SECTIONS:
                description.append(line)
            continue
        if section in _ARG_SECTIONS:
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            arg = _ARG_RE.match(line)
            if arg and (current is None or indent <= arg_indent):
                current, arg_indent = arg.group(1), indent
                args[current] = arg.group(3).strip()
            elif current is not None and stripped:
                args[current] = f"{args[current]} {stripped}".strip()
            continue
        if section in _DROP_SECTIONS:
            continue
        description.append(line)
    return "\n".join(description).strip(), args


def clean_description(doc: str) -> str:
    return parse_docstring(doc)[0]


__all__ = [
    "FunctionTool",
    "InvalidArguments",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolMedia",
    "ToolNotice",
    "ToolOutput",
    "as_tool",
    "parse_docstring",
    "schema_of",
    "tool",
    "tool_declaration",
]
