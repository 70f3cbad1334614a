"""The clients' per-RPC methods are generated from the TaskService descriptor
(``scripts/gen_client_methods.py``): the committed files are its output for the current protos,
and a new RPC in the descriptor is a new method in every language, with its comment as doc."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import gen_client_methods as gen
from tiergate.v1 import task_service_pb2

COMMENT = " Counts the words of the text, exactly.\n Runs on the fast tier.\n"


def with_rpc(name: str, comment: str = COMMENT) -> descriptor_pb2.FileDescriptorProto:
    """task_service.proto with one more RPC, ``name``, taking and returning existing messages,
    and ``comment`` as its leading comment."""
    file = descriptor_pb2.FileDescriptorProto()
    task_service_pb2.DESCRIPTOR.CopyToProto(file)
    service = next(i for i, s in enumerate(file.service) if s.name == "TaskService")
    file.service[service].method.add(
        name=name,
        input_type=".tiergate.v1.ClassifyRequest",
        output_type=".tiergate.v1.ClassifyResponse",
    )
    number = len(file.service[service].method) - 1
    file.source_code_info.location.add(path=[6, service, 2, number], leading_comments=comment)
    return file


def last_method(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.MethodDescriptorProto:
    """The TaskService RPC ``with_rpc`` added."""
    return next(s for s in file.service if s.name == "TaskService").method[-1]


class TestTheCommittedFiles:
    def test_are_the_output_for_the_current_protos(self) -> None:
        """Rendering the descriptor protoc builds from protos/ gives the committed files byte
        for byte (what ``make proto-check`` also enforces)."""
        for path, text in gen.render(gen.descriptor()).items():
            assert (gen.ROOT / path).read_text() == text, f"{path} is stale: run make proto"

    def test_a_changed_or_missing_file_is_stale(self, tmp_path: Path) -> None:
        """The check names a file that differs from the rendering or is missing, and only
        those."""
        rendered = gen.render(gen.descriptor())
        changed, missing, *fresh = sorted(rendered)
        for path in [changed, *fresh]:
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(rendered[path])
        assert gen.stale(rendered, tmp_path) == [str(missing)]
        (tmp_path / changed).write_text(rendered[changed] + "\n")
        assert gen.stale(rendered, tmp_path) == sorted([str(changed), str(missing)])


class TestANewRpc:
    FILES = gen.render(with_rpc("CountWords"))
    PYTHON = FILES[Path("clients/python/src/tiergate/client/_tasks.py")]
    GO = FILES[Path("clients/go/tiergate/tasks.gen.go")]
    TS = FILES[Path("clients/typescript/src/tasks.gen.ts")]
    JAVA = FILES[gen.JAVA_METHODS]

    def test_is_a_method_of_both_python_clients(self) -> None:
        """count_words, typed with the RPC's messages and documented by its comment, lands in
        the sync and the asyncio methods, and the module still parses."""
        module = ast.parse(self.PYTHON)
        for class_name in ("TaskMethods", "AsyncTaskMethods"):
            cls = next(
                n for n in module.body if isinstance(n, ast.ClassDef) and n.name == class_name
            )
            method = next(
                n
                for n in cls.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "count_words"
            )
            request, returns = method.args.args[1].annotation, method.returns
            assert request is not None
            assert ast.unparse(request) == "pb.ClassifyRequest"
            assert returns is not None
            assert ast.unparse(returns) == "pb.ClassifyResponse"
            assert ast.get_docstring(method) == (
                "Counts the words of the text, exactly. Runs on the fast tier."
            )
            assert "self._stub.CountWords, request, timeout_s" in ast.unparse(method)

    def test_names_its_method_for_the_cli_and_batches(self) -> None:
        """``METHOD_NAMES`` maps the RPC to its Python method, which names the CLI command
        (``count-words``) and the batch result's field."""
        module = ast.parse(self.PYTHON)
        [table] = [
            n.value
            for n in module.body
            if isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)
            and n.target.id == "METHOD_NAMES"
        ]
        assert table is not None
        names = ast.literal_eval(table)
        assert names["CountWords"] == "count_words"
        assert names["Classify"] == "classify"

    def test_is_a_go_method_with_a_go_doc_comment(self) -> None:
        """The Go method is named after the RPC, its comment starts with that name, and it
        calls the stub's method of the same name."""
        assert (
            "// CountWords counts the words of the text, exactly. Runs on the fast tier.\n"
            "func (c *Client) CountWords(ctx context.Context, req *tiergatev1.ClassifyRequest, "
            "opts ...grpc.CallOption) (*tiergatev1.ClassifyResponse, error) {\n"
            "\treturn call(ctx, c, c.stub.CountWords, req, opts)\n}\n"
        ) in self.GO

    def test_is_a_typescript_method_in_lower_camel_case(self) -> None:
        """countWords takes the request's init shape and calls TaskService.method.countWords."""
        assert re.search(
            r"/\*\* Counts the words of the text, exactly\. Runs on the fast tier\. \*/\n"
            r"  countWords\(\n    request: MessageInitShape<typeof ClassifyRequestSchema>,\n"
            r"    options\?: CallOptions,\n  \): Promise<ClassifyResponse> \{\n"
            r"    return this\.unary\(TaskService\.method\.countWords, request, options\);",
            self.TS,
        )

    def test_is_a_java_method_blocking_and_future_based(self) -> None:
        """countWords and countWordsAsync, each with and without a timeout, take the RPC's
        request, return its response (or a future of it), are documented by its comment and
        call the stub's method descriptor; the messages are imported from the outer class."""
        method = "TaskServiceGrpc.getCountWordsMethod()"
        assert (
            "  /** Counts the words of the text, exactly. Runs on the fast tier. */\n"
            "  public ClassifyResponse countWords(ClassifyRequest request) {\n"
            f"    return call({method}, request, null);\n  }}\n"
        ) in self.JAVA
        assert (
            "  public ClassifyResponse countWords(ClassifyRequest request, Duration timeout) {\n"
            f"    return call({method}, request, timeout);\n"
        ) in self.JAVA
        assert (
            "  public CompletableFuture<ClassifyResponse> countWordsAsync(ClassifyRequest request)"
            f" {{\n    return callAsync({method}, request, null);\n"
        ) in self.JAVA
        assert (
            "  public CompletableFuture<ClassifyResponse> countWordsAsync(\n"
            "      ClassifyRequest request, Duration timeout) {\n"
            f"    return callAsync({method}, request, timeout);\n"
        ) in self.JAVA
        assert "import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;\n" in self.JAVA

    def test_a_java_doc_escapes_what_javadoc_would_read(self) -> None:
        """A comment's HTML, comment end and tags are escaped, and its `code` spans become
        {@code}: the rendered Javadoc says what the proto comment says."""
        files = gen.render(with_rpc("Ping", comment=" Answers `ok` for <T> & @x: a */ b.\n"))
        assert (
            "/** Answers {@code ok} for &lt;T&gt; &amp; &#64;x: a *&#47; b. */"
            in files[gen.JAVA_METHODS]
        )

    def test_java_classes_follow_protocs_rules(self) -> None:
        """Messages are nested in the file's outer class, named after the file with OuterClass
        when a type already has that name, or top-level with java_multiple_files."""
        file = with_rpc("Ping")
        assert gen.java_classes(file) == ("tiergate.v1", "tiergate.v1.TaskServiceOuterClass")
        file.service[0].name = "Tasks"
        assert gen.java_classes(file) == ("tiergate.v1", "tiergate.v1.TaskService")
        file.options.java_package = "com.example.tiergate.v1"
        file.options.java_multiple_files = True
        assert gen.java_classes(file) == ("com.example.tiergate.v1", "com.example.tiergate.v1")

    def test_a_long_name_keeps_lines_within_the_limit(self) -> None:
        """A long RPC name and a long comment are wrapped the way ruff formats them: no Python
        line over 100 columns, and the comment's words all kept in order."""
        comment = " ".join(["Counts every word of the text."] * 8)
        files = gen.render(with_rpc("CountEveryWordOfTheTextExactlyAndSlowly", comment))
        python = files[Path("clients/python/src/tiergate/client/_tasks.py")]
        assert max(len(line) for line in python.splitlines()) <= gen.WIDTH
        assert "def count_every_word_of_the_text_exactly_and_slowly(\n" in python
        assert " ".join(python.split()).count(comment) == 2
        java = files[gen.JAVA_METHODS]
        assert max(len(line) for line in java.splitlines()) <= gen.WIDTH
        assert " ".join(java.replace(" * ", " ").split()).count(comment) == 1

    def test_ruff_would_change_nothing(self) -> None:
        """The Python rendering, long lines split included, is already what ruff format
        writes, so the committed module stays format-clean whatever the RPC names."""
        files = gen.render(with_rpc("CountEveryWordOfTheTextExactlyAndSlowlyPlease"))
        for path, text in files.items():
            if path.suffix != ".py":
                continue
            formatted = subprocess.run(
                [
                    str(Path(sys.executable).parent / "ruff"),
                    "format",
                    "--stdin-filename",
                    path,
                    "-",
                ],
                input=text,
                capture_output=True,
                text=True,
                cwd=gen.ROOT,
                check=True,
            )
            assert formatted.stdout == text


class TestRefusals:
    def test_a_streaming_rpc_is_refused(self) -> None:
        """A streaming RPC has no unary method to generate: the generator stops, naming it."""
        file = with_rpc("Watch")
        last_method(file).server_streaming = True
        with pytest.raises(SystemExit, match=r"TaskService\.Watch: streaming"):
            gen.render(file)

    def test_a_message_of_another_package_is_refused(self) -> None:
        """Methods import the request and response from tiergate.v1 only."""
        file = with_rpc("Ping")
        last_method(file).input_type = ".google.protobuf.Empty"
        with pytest.raises(SystemExit, match=r"google\.protobuf\.Empty is not in tiergate\.v1"):
            gen.render(file)

    def test_an_rpc_without_a_comment_still_gets_a_doc(self) -> None:
        """No comment: the doc names the RPC instead of being empty."""
        files = gen.render(with_rpc("Ping", comment=""))
        assert "Calls TaskService.Ping." in files[Path("clients/typescript/src/tasks.gen.ts")]
