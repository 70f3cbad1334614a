"""Regenerate the clients' per-RPC methods from the TaskService descriptor (``make proto``), or
check them (``make proto-check``).

One typed method per RPC of ``TaskService``, each calling the client's own transport (deadline,
metadata, error decoding), with the rpc's comment in ``task_service.proto`` as its doc:

- Python: ``TaskMethods`` and ``AsyncTaskMethods`` in ``tiergate/client/_tasks.py``, inherited
  by ``TaskClient`` and ``AsyncTaskClient`` (names in snake_case: ``count_words``);
- Go: ``(*Client).<Rpc>`` in ``clients/go/tiergate/tasks.gen.go``;
- TypeScript: the abstract ``TaskMethods`` in ``clients/typescript/src/tasks.gen.ts``, which
  ``TaskClient`` extends (names in lowerCamelCase, as protobuf-es names the methods);
- Java: the abstract ``TaskMethods`` in ``clients/java/src/main/java/tiergate/client/``, which
  ``TiergateClient`` extends: per RPC a blocking method and a future-based ``<rpc>Async``, each
  with and without its own timeout (names in lowerCamelCase, as protoc's Java stubs name them).

The server-streaming RPCs of ``StreamService`` (``stream_service.proto``) get their methods in
files of their own: ``StreamMethods`` / ``AsyncStreamMethods`` in ``_streams.py`` (an iterator
and an async iterator of the stream's messages) and ``(*Client).<Rpc>`` in
``streams.gen.go`` (a receiver whose ``Recv`` returns ``io.EOF`` after the last message).

The descriptor comes from protoc (``--include_source_info`` keeps the comments). ``--check``
renders into memory and fails when a committed file differs.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO = "tiergate/v1/task_service.proto"
PACKAGE = "tiergate.v1"
SERVICE = "TaskService"
WIDTH = 100  # ruff's line length; gofmt and tsc do not wrap
# Field numbers in descriptor.proto: FileDescriptorProto.service, ServiceDescriptorProto.method.
SERVICE_FIELD, METHOD_FIELD = 6, 2
ORIGIN = f"protos/{PROTO} by make proto"


@dataclass(frozen=True)
class Rpc:
    """One unary RPC: its name, request and response message names, and its comment."""

    name: str
    request: str
    response: str
    doc: str

    @property
    def snake(self) -> str:
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", self.name).lower()

    @property
    def camel(self) -> str:
        return self.name[0].lower() + self.name[1:]


STREAM_PROTO = "tiergate/v1/stream_service.proto"
STREAM_SERVICE = "StreamService"
STREAM_ORIGIN = f"protos/{STREAM_PROTO} by make proto"


def descriptor(proto: str = PROTO) -> descriptor_pb2.FileDescriptorProto:
    """``proto`` (``task_service.proto``) compiled by protoc, with its comments."""
    from grpc_tools import protoc  # the codegen extra; the renderers need only protobuf

    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "descriptor.pb"
        args = [
            "grpc_tools.protoc",
            f"-I{ROOT / 'protos'}",
            f"-I{well_known}",
            f"-I{ROOT / 'third_party'}",
            f"--descriptor_set_out={out}",
            "--include_source_info",
            proto,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return next(f for f in files.file if f.name == proto)


def rpcs(
    file: descriptor_pb2.FileDescriptorProto, service: str = SERVICE, streaming: bool = False
) -> list[Rpc]:
    """The service's RPCs in declaration order; refuses what the client methods cannot express
    (streaming RPCs in TaskService, anything but server-streaming RPCs in StreamService)."""
    index = next(i for i, s in enumerate(file.service) if s.name == service)
    comments = {
        tuple(location.path): location.leading_comments
        for location in file.source_code_info.location
    }
    found = []
    for number, method in enumerate(file.service[index].method):
        if method.client_streaming or method.server_streaming != streaming:
            kind = "only server-streaming" if streaming else "streaming RPCs have no client method"
            raise SystemExit(f"{service}.{method.name}: {kind}")
        types = []
        for full_name in (method.input_type, method.output_type):
            package, _, name = full_name.lstrip(".").rpartition(".")
            if package != PACKAGE:
                raise SystemExit(f"{service}.{method.name}: {full_name} is not in {PACKAGE}")
            types.append(name)
        text = comments.get((SERVICE_FIELD, index, METHOD_FIELD, number), "")
        doc = " ".join(text.split()) or f"Calls {service}.{method.name}."
        found.append(Rpc(method.name, types[0], types[1], doc))
    return found


def wrap(text: str, indent: str, first: str = "", last: str = "") -> list[str]:
    """``text`` in lines of at most WIDTH columns, ``first`` before it and ``last`` after."""
    lines = textwrap.wrap(
        first + text,
        width=WIDTH - len(last),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines[-1] += last
    return lines


def fit(opening: str, inside: str, closing: str, indent: int) -> str:
    """One line if it fits, else ruff format's split: the bracket's contents on their own line."""
    line = f"{opening}{inside}{closing}"
    if len(line) <= WIDTH:
        return line
    return f"{opening}\n{' ' * (indent + 4)}{inside}\n{' ' * indent}{closing}"


def python_method(rpc: Rpc, asynchronous: bool) -> list[str]:
    define, wait = ("async def", "await ") if asynchronous else ("def", "")
    params = f"self, request: pb.{rpc.request}, *, timeout_s: float | None = None"
    signature = fit(f"    {define} {rpc.snake}(", params, f") -> pb.{rpc.response}:", indent=4)
    doc = rpc.doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    doc += " " if doc.endswith('"') else ""
    call = f"self._stub.{rpc.name}, request, timeout_s"
    body = fit(f"        reply: pb.{rpc.response} = {wait}self._call(", call, ")", indent=8)
    return [
        signature,
        *wrap(doc, " " * 8, first='"""', last='"""'),
        body,
        "        return reply",
    ]


def render_python(found: Sequence[Rpc]) -> str:
    lines = [
        f'"""Generated from {ORIGIN}. Do not edit.',
        "",
        "The typed methods of ``TaskClient`` and ``AsyncTaskClient``, one per RPC of the",
        "TaskService, each through the client's ``_call`` (deadline, metadata, decoded errors).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Callable",
        "from typing import TYPE_CHECKING, Any",
        "",
        "from tiergate.v1 import task_service_pb2 as pb",
        "from tiergate.v1 import task_service_pb2_grpc",
        "",
        "METHOD_NAMES: dict[str, str] = {",
        *(f'    "{rpc.name}": "{rpc.snake}",' for rpc in found),
        "}",
        '"""The client method of each RPC, by the RPC\'s name."""',
    ]
    for asynchronous in (False, True):
        prefix, sort = ("Async", "asyncio") if asynchronous else ("", "synchronous")
        stub = "TaskServiceAsyncStub" if asynchronous else "TaskServiceStub"
        method = "Any" if asynchronous else "Callable[..., Any]"
        define = "async def" if asynchronous else "def"
        params = f"self, method: {method}, request: object, timeout_s: float | None"
        lines += [
            "",
            "",
            f"class {prefix}TaskMethods:",
            f'    """The {sort} client\'s method for every TaskService RPC."""',
            "",
            f"    _stub: task_service_pb2_grpc.{stub}",
            "",
            "    if TYPE_CHECKING:  # the client defines it",
            "",
            fit(f"        {define} _call(", params, ") -> Any: ...", indent=8),
        ]
        for rpc in found:
            lines += ["", *python_method(rpc, asynchronous)]
    return "\n".join(lines) + "\n"


def render_go(found: Sequence[Rpc]) -> str:
    lines = [
        f"// Code generated from {ORIGIN}. DO NOT EDIT.",
        "",
        "package tiergate",
        "",
        "import (",
        '\t"context"',
        "",
        '\t"google.golang.org/grpc"',
        "",
        '\ttiergatev1 "tiergate/clients/go/gen/tiergate/v1"',
        ")",
    ]
    for rpc in found:
        # Go doc comments start with the name they document.
        doc = rpc.doc[0].lower() + rpc.doc[1:] if rpc.doc[1:2].islower() else rpc.doc
        lines += [
            "",
            *wrap(f"{rpc.name} {doc}", "// "),
            f"func (c *Client) {rpc.name}(ctx context.Context, req *tiergatev1.{rpc.request}, "
            f"opts ...grpc.CallOption) (*tiergatev1.{rpc.response}, error) {{",
            f"\treturn call(ctx, c, c.stub.{rpc.name}, req, opts)",
            "}",
        ]
    return "\n".join(lines) + "\n"


def render_typescript(found: Sequence[Rpc]) -> str:
    names = {f"{r.request}Schema" for r in found} | {r.response for r in found}
    lines = [
        f"// Code generated from {ORIGIN}. DO NOT EDIT.",
        "// The typed method of every TaskService RPC; TaskClient extends this class.",
        "import type {",
        "  DescMessage,",
        "  DescMethodUnary,",
        "  MessageInitShape,",
        "  MessageShape,",
        '} from "@bufbuild/protobuf";',
        "",
        'import type { CallOptions } from "./options.js";',
        "import {",
        "  TaskService,",
        *(f"  type {name}," for name in sorted(names)),
        '} from "./gen/tiergate/v1/task_service_pb.js";',
        "",
        "export abstract class TaskMethods {",
        "  protected abstract unary<I extends DescMessage, O extends DescMessage>(",
        "    method: DescMethodUnary<I, O>,",
        "    request: MessageInitShape<I>,",
        "    options?: CallOptions,",
        "  ): Promise<MessageShape<O>>;",
    ]
    for rpc in found:
        doc = wrap(rpc.doc, "  /** ", last=" */")
        if len(doc) > 1:
            doc = ["  /**", *wrap(rpc.doc, "   * "), "   */"]
        lines += [
            "",
            *doc,
            f"  {rpc.camel}(",
            f"    request: MessageInitShape<typeof {rpc.request}Schema>,",
            "    options?: CallOptions,",
            f"  ): Promise<{rpc.response}> {{",
            f"    return this.unary(TaskService.method.{rpc.camel}, request, options);",
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


def python_stream_method(rpc: Rpc, asynchronous: bool) -> list[str]:
    iterator = "AsyncIterator" if asynchronous else "Iterator"
    params = f"self, request: pb.{rpc.request}, *, timeout_s: float | None = None"
    returns = f") -> {iterator}[spb.{rpc.response}]:"
    signature = fit(f"    def {rpc.snake}(", params, returns, indent=4)
    doc = rpc.doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    doc += " " if doc.endswith('"') else ""
    call = f"self._streams.{rpc.name}, request, timeout_s"
    return [
        signature,
        *wrap(doc, " " * 8, first='"""', last='"""'),
        fit("        return self._stream(", call, ")", indent=8),
    ]


def render_python_streams(found: Sequence[Rpc]) -> str:
    lines = [
        f'"""Generated from {STREAM_ORIGIN}. Do not edit.',
        "",
        "The streaming methods of ``TaskClient`` and ``AsyncTaskClient``, one per RPC of the",
        "StreamService, each through the client's ``_stream`` (deadline, metadata, decoded",
        "errors; leaving the loop early cancels the call).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import AsyncIterator, Callable, Iterator",
        "from typing import TYPE_CHECKING, Any",
        "",
        "from tiergate.v1 import stream_service_pb2 as spb",
        "from tiergate.v1 import stream_service_pb2_grpc",
        "from tiergate.v1 import task_service_pb2 as pb",
        "",
        "STREAM_METHOD_NAMES: dict[str, str] = {",
        *(f'    "{rpc.name}": "{rpc.snake}",' for rpc in found),
        "}",
        '"""The client method of each streaming RPC, by the RPC\'s name."""',
    ]
    for asynchronous in (False, True):
        prefix, sort = ("Async", "asyncio") if asynchronous else ("", "synchronous")
        stub = "StreamServiceAsyncStub" if asynchronous else "StreamServiceStub"
        method = "Any" if asynchronous else "Callable[..., Any]"
        iterator = "AsyncIterator[Any]" if asynchronous else "Iterator[Any]"
        params = f"self, method: {method}, request: object, timeout_s: float | None"
        lines += [
            "",
            "",
            f"class {prefix}StreamMethods:",
            f'    """The {sort} client\'s method for every StreamService RPC."""',
            "",
            f"    _streams: stream_service_pb2_grpc.{stub}",
            "",
            "    if TYPE_CHECKING:  # the client defines it",
            "",
            fit("        def _stream(", params, f") -> {iterator}: ...", indent=8),
        ]
        for rpc in found:
            lines += ["", *python_stream_method(rpc, asynchronous)]
    return "\n".join(lines) + "\n"


def render_go_streams(found: Sequence[Rpc]) -> str:
    lines = [
        f"// Code generated from {STREAM_ORIGIN}. DO NOT EDIT.",
        "",
        "package tiergate",
        "",
        "import (",
        '\t"context"',
        "",
        '\t"google.golang.org/grpc"',
        "",
        '\ttiergatev1 "tiergate/clients/go/gen/tiergate/v1"',
        ")",
    ]
    for rpc in found:
        doc = rpc.doc[0].lower() + rpc.doc[1:] if rpc.doc[1:2].islower() else rpc.doc
        lines += [
            "",
            *wrap(f"{rpc.name} {doc} Recv returns io.EOF after the last message.", "// "),
            f"func (c *Client) {rpc.name}(ctx context.Context, req *tiergatev1.{rpc.request}, "
            f"opts ...grpc.CallOption) (*Stream[tiergatev1.{rpc.response}], error) {{",
            f"\treturn stream(ctx, c, c.streams.{rpc.name}, req, opts)",
            "}",
        ]
    return "\n".join(lines) + "\n"


def render_typescript_streams(found: Sequence[Rpc]) -> str:
    requests = sorted({f"{r.request}Schema" for r in found})
    lines = [
        f"// Code generated from {STREAM_ORIGIN}. DO NOT EDIT.",
        "// The streaming method of every StreamService RPC, an async iterable of the stream's",
        "// messages (leaving the loop early cancels the call); TaskClient extends this class.",
        "import type {",
        "  DescMessage,",
        "  DescMethodServerStreaming,",
        "  MessageInitShape,",
        "  MessageShape,",
        '} from "@bufbuild/protobuf";',
        "",
        'import type { CallOptions } from "./options.js";',
        'import { TaskMethods } from "./tasks.gen.js";',
        "import {",
        "  StreamService,",
        *(f"  type {r.response}," for r in sorted(found, key=lambda r: r.response)),
        '} from "./gen/tiergate/v1/stream_service_pb.js";',
        "import {",
        *(f"  type {name}," for name in requests),
        '} from "./gen/tiergate/v1/task_service_pb.js";',
        "",
        "export abstract class StreamMethods extends TaskMethods {",
        "  protected abstract serverStream<I extends DescMessage, O extends DescMessage>(",
        "    method: DescMethodServerStreaming<I, O>,",
        "    request: MessageInitShape<I>,",
        "    options?: CallOptions,",
        "  ): AsyncIterable<MessageShape<O>>;",
    ]
    for rpc in found:
        doc = wrap(rpc.doc, "  /** ", last=" */")
        if len(doc) > 1:
            doc = ["  /**", *wrap(rpc.doc, "   * "), "   */"]
        lines += [
            "",
            *doc,
            f"  {rpc.camel}(",
            f"    request: MessageInitShape<typeof {rpc.request}Schema>,",
            "    options?: CallOptions,",
            f"  ): AsyncIterable<{rpc.response}> {{",
            f"    return this.serverStream(StreamService.method.{rpc.camel}, request, options);",
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


STREAM_RENDERERS: dict[Path, Callable[[Sequence[Rpc]], str]] = {
    Path("clients/python/src/tiergate/client/_streams.py"): render_python_streams,
    Path("clients/go/tiergate/streams.gen.go"): render_go_streams,
    Path("clients/typescript/src/streams.gen.ts"): render_typescript_streams,
}


RENDERERS: dict[Path, Callable[[Sequence[Rpc]], str]] = {
    Path("clients/python/src/tiergate/client/_tasks.py"): render_python,
    Path("clients/go/tiergate/tasks.gen.go"): render_go,
    Path("clients/typescript/src/tasks.gen.ts"): render_typescript,
}


JAVA_METHODS = Path("clients/java/src/main/java/tiergate/client/TaskMethods.java")


def java_classes(file: descriptor_pb2.FileDescriptorProto) -> tuple[str, str]:
    """The Java package of the file's stubs and the prefix of its message classes, by protoc's
    rules: messages are nested in the file's outer class unless ``java_multiple_files``."""
    options = file.options
    package = options.java_package or file.package
    if options.java_multiple_files:
        return package, package
    outer = options.java_outer_classname
    if not outer:
        stem = Path(file.name).stem
        outer = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", stem))
        taken = {m.name for m in file.message_type} | {e.name for e in file.enum_type}
        taken |= {s.name for s in file.service}
        outer += "OuterClass" if outer in taken else ""
    return package, f"{package}.{outer}"


def javadoc(text: str, indent: str = "  ", escape: bool = True) -> list[str]:
    """``text`` as a Javadoc comment, on one line when it fits; an rpc's comment has its HTML and
    comment syntax escaped and its `code` as {@code}."""
    if escape:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = text.replace("*/", "*&#47;").replace("@", "&#64;")
        text = re.sub(r"`([^`{}]+)`", r"{@code \1}", text)
    line = f"{indent}/** {text} */"
    if len(line) <= WIDTH:
        return [line]
    return [f"{indent}/**", *wrap(text, f"{indent} * "), f"{indent} */"]


def java_signature(opening: str, params: str) -> list[str]:
    """A method's first line, or the Google Java style split: its parameters on the next line."""
    line = f"  {opening}({params}) {{"
    return [line] if len(line) <= WIDTH else [f"  {opening}(", f"      {params}) {{"]


def java_return(call: str, method: str, timeout: str) -> str:
    """A method's body: one line, or the call's arguments on a continuation line."""
    line = f"    return {call}({method}, request, {timeout});"
    return (
        line
        if len(line) <= WIDTH
        else f"    return {call}(\n        {method}, request, {timeout});"
    )


def render_java(found: Sequence[Rpc], file: descriptor_pb2.FileDescriptorProto) -> str:
    package, messages = java_classes(file)
    names = sorted({r.request for r in found} | {r.response for r in found})
    lines = [
        f"// Code generated from {ORIGIN}. DO NOT EDIT.",
        "package tiergate.client;",
        "",
        "import io.grpc.MethodDescriptor;",
        "import java.time.Duration;",
        "import java.util.concurrent.CompletableFuture;",
        f"import {package}.{SERVICE}Grpc;",
        *(f"import {messages}.{name};" for name in names),
        "",
        *javadoc(
            f"The typed methods of every {SERVICE} RPC, each blocking and future-based "
            "({@code <rpc>Async}), with the client's default deadline or a timeout of its own. "
            "A failed call throws, or completes the future with, a {@link TiergateException}. "
            "{@link TiergateClient} extends this class.",
            indent="",
            escape=False,
        ),
        "public abstract class TaskMethods {",
        "  TaskMethods() {}",
        "",
        *javadoc(
            "Calls {@code method}; a null {@code timeout} means the client's default deadline.",
            escape=False,
        ),
        "  abstract <Q, R> R call(MethodDescriptor<Q, R> method, Q request, Duration timeout);",
        "",
        "  /** {@link #call}, future-based. */",
        "  abstract <Q, R> CompletableFuture<R> callAsync(",
        "      MethodDescriptor<Q, R> method, Q request, Duration timeout);",
    ]
    for rpc in found:
        method = f"{SERVICE}Grpc.get{rpc.name}Method()"
        blocking = f"{rpc.camel}({rpc.request})"
        future = f"CompletableFuture<{rpc.response}>"
        timed = f"{rpc.request} request, Duration timeout"
        lines += [
            "",
            *javadoc(rpc.doc),
            *java_signature(f"public {rpc.response} {rpc.camel}", f"{rpc.request} request"),
            java_return("call", method, "null"),
            "  }",
            "",
            *javadoc(
                f"{{@link #{blocking}}} with a deadline {{@code timeout}} from now.", escape=False
            ),
            *java_signature(f"public {rpc.response} {rpc.camel}", timed),
            java_return("call", method, "timeout"),
            "  }",
            "",
            *javadoc(f"{{@link #{blocking}}}, future-based.", escape=False),
            *java_signature(f"public {future} {rpc.camel}Async", f"{rpc.request} request"),
            java_return("callAsync", method, "null"),
            "  }",
            "",
            *javadoc(
                f"{{@link #{blocking}}}, future-based, with a deadline {{@code timeout}} from now.",
                escape=False,
            ),
            *java_signature(f"public {future} {rpc.camel}Async", timed),
            java_return("callAsync", method, "timeout"),
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


def java_split_signature(opening: str, params: list[str]) -> list[str]:
    """As :func:`java_signature`, with one parameter a line when they fit on none."""
    lines = java_signature(opening, ", ".join(params))
    if all(len(line) <= WIDTH for line in lines):
        return lines
    return [f"  {opening}(", *(f"      {p}," for p in params[:-1]), f"      {params[-1]}) {{"]


JAVA_STREAMS = Path("clients/java/src/main/java/tiergate/client/StreamMethods.java")


def render_java_streams(
    found: Sequence[Rpc],
    file: descriptor_pb2.FileDescriptorProto,
    requests_file: descriptor_pb2.FileDescriptorProto,
) -> str:
    package, messages = java_classes(file)
    _, request_messages = java_classes(requests_file)
    lines = [
        f"// Code generated from {STREAM_ORIGIN}. DO NOT EDIT.",
        "package tiergate.client;",
        "",
        "import io.grpc.MethodDescriptor;",
        "import io.grpc.stub.StreamObserver;",
        "import java.time.Duration;",
        f"import {package}.{STREAM_SERVICE}Grpc;",
        *(f"import {messages}.{name};" for name in sorted({r.response for r in found})),
        *(f"import {request_messages}.{name};" for name in sorted({r.request for r in found})),
        "",
        *javadoc(
            f"The streaming methods of every {STREAM_SERVICE} RPC: a {{@link ResponseStream}} "
            "to iterate (close it to stop early) and a {@link StreamObserver} variant "
            "({@code <rpc>Async}), each with the client's default deadline or a timeout of its "
            "own. A failure before the first message is retried after the server's pushback; "
            "any failure reaches the caller as a {@link TiergateException}. {@link "
            "TiergateClient} extends this class.",
            indent="",
            escape=False,
        ),
        "public abstract class StreamMethods extends TaskMethods {",
        "  StreamMethods() {}",
        "",
        *javadoc(
            "Opens {@code method}'s stream; a null {@code timeout} means the default deadline.",
            escape=False,
        ),
        "  abstract <Q, R> ResponseStream<R> stream(",
        "      MethodDescriptor<Q, R> method, Q request, Duration timeout);",
        "",
        "  /** {@link #stream}, each message handed to {@code observer} on another thread. */",
        "  abstract <Q, R> void streamAsync(",
        "      MethodDescriptor<Q, R> method,",
        "      Q request,",
        "      Duration timeout,",
        "      StreamObserver<R> observer);",
    ]
    for rpc in found:
        method = f"{STREAM_SERVICE}Grpc.get{rpc.name}Method()"
        stream = f"ResponseStream<{rpc.response}>"
        observer = f"StreamObserver<{rpc.response}> observer"
        blocking = f"{rpc.camel}({rpc.request})"
        lines += [
            "",
            *javadoc(rpc.doc),
            *java_signature(f"public {stream} {rpc.camel}", f"{rpc.request} request"),
            java_return("stream", method, "null"),
            "  }",
            "",
            *javadoc(
                f"{{@link #{blocking}}} with a deadline {{@code timeout}} from now.", escape=False
            ),
            *java_signature(
                f"public {stream} {rpc.camel}", f"{rpc.request} request, Duration timeout"
            ),
            java_return("stream", method, "timeout"),
            "  }",
            "",
            *javadoc(f"{{@link #{blocking}}}, each message to {{@code observer}}.", escape=False),
            *java_signature(f"public void {rpc.camel}Async", f"{rpc.request} request, {observer}"),
            f"    streamAsync({method}, request, null, observer);",
            "  }",
            "",
            *javadoc(
                f"{{@link #{blocking}}}, each message to {{@code observer}}, with a deadline "
                "{@code timeout} from now.",
                escape=False,
            ),
            *java_split_signature(
                f"public void {rpc.camel}Async",
                [f"{rpc.request} request", "Duration timeout", observer],
            ),
            f"    streamAsync({method}, request, timeout, observer);",
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


def render(
    file: descriptor_pb2.FileDescriptorProto,
    streams: descriptor_pb2.FileDescriptorProto | None = None,
) -> dict[Path, str]:
    """Every generated file's text, by its path under the repository root; the streaming
    methods' files only with ``streams`` (``stream_service.proto``)."""
    found = rpcs(file)
    rendered = {path: renderer(found) for path, renderer in RENDERERS.items()}
    rendered[JAVA_METHODS] = render_java(found, file)
    if streams is not None:
        streamed = rpcs(streams, STREAM_SERVICE, streaming=True)
        rendered.update({path: render(streamed) for path, render in STREAM_RENDERERS.items()})
        rendered[JAVA_STREAMS] = render_java_streams(streamed, streams, file)
    return rendered


def stale(rendered: dict[Path, str], root: Path) -> list[str]:
    """The rendered files that are missing or different under ``root``."""
    return sorted(
        str(path)
        for path, text in rendered.items()
        if not (root / path).is_file() or (root / path).read_text() != text
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    check = parser.parse_args().check
    rendered = render(descriptor(), descriptor(STREAM_PROTO))
    if not check:
        for path, text in rendered.items():
            (ROOT / path).write_text(text)
        return 0
    different = stale(rendered, ROOT)
    if different:
        print(f"generated client methods are stale (run make proto): {', '.join(different)}")
        return 1
    print("generated client methods are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
