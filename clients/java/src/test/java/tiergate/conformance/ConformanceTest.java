package tiergate.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.grpc.MethodDescriptor;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import tiergate.client.Batches;
import tiergate.client.ResponseStream;
import tiergate.client.TiergateClient;
import tiergate.client.TiergateException;
import tiergate.v1.BatchServiceOuterClass.Batch;
import tiergate.v1.BatchServiceOuterClass.BatchResult;
import tiergate.v1.BatchServiceOuterClass.CreateBatchRequest;
import tiergate.v1.StreamServiceGrpc;
import tiergate.v1.TaskServiceGrpc;

/**
 * The shared cases of clients/conformance/cases.json through the Java client, blocking and
 * future-based, against a live server (TIERGATE_TARGET) whose upstream is the emulator
 * (TIERGATE_EMULATOR_URL); make clients-test starts both. The rules are in the README beside
 * cases.json.
 */
class ConformanceTest {
  private static final Path CASES = Path.of("..", "conformance", "cases.json");
  // HTTP/1.1, as the emulator speaks it (no h2c upgrade attempt), and a bound on every control
  // call: a pooled connection was once seen to stall with its request unanswered, which
  // without a timeout hangs the whole suite.
  private static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();
  private static final Duration CONTROL_TIMEOUT = Duration.ofSeconds(10);
  private static final String[] COST_PARTS = {
    "input_nanos", "cache_write_nanos", "cache_read_nanos", "output_nanos"
  };

  private static TiergateClient client;
  private static String emulator;

  @TestFactory
  Stream<DynamicNode> cases() throws IOException {
    String target = System.getenv("TIERGATE_TARGET");
    emulator = System.getenv("TIERGATE_EMULATOR_URL");
    Assumptions.assumeTrue(
        target != null && emulator != null,
        "TIERGATE_TARGET and TIERGATE_EMULATOR_URL are not set: run with make clients-test");
    emulator = emulator.replaceAll("/+$", "");
    client = TiergateClient.connect(target);
    List<Struct> cases = new ArrayList<>();
    for (Value one : parse(Files.readString(CASES)).getFieldsOrThrow("cases").getListValue()
        .getValuesList()) {
      cases.add(one.getStructValue());
    }
    // Batches have blocking helpers only: their cases run once, with the blocking calls.
    return Stream.of(
        DynamicContainer.dynamicContainer(
            "blocking", cases.stream().map(c -> conformanceCase(c, false))),
        DynamicContainer.dynamicContainer(
            "future",
            cases.stream()
                .filter(c -> !text(c, "rpc").equals("Batch"))
                .map(c -> conformanceCase(c, true))));
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
    }
  }

  private static DynamicTest conformanceCase(Struct c, boolean future) {
    String name = text(c, "name");
    return DynamicTest.dynamicTest(
        name,
        () -> {
          String mode = future ? "future" : "blocking";
          try {
            run(c, future);
            System.out.printf("  passed  %s: %s%n", mode, name);
          } catch (AssertionError | Exception failure) {
            System.out.printf("  FAILED  %s: %s: %s%n", mode, name, failure.getMessage());
            throw failure;
          }
        });
  }

  private static void run(Struct c, boolean future) throws Exception {
    Struct expect = c.getFieldsOrThrow("expect").getStructValue();
    if (c.containsFields("faults")) {
      post("/_emulator/reset", "{}");
      post("/_emulator/faults", print(c.getFieldsOrThrow("faults")));
    }
    Duration timeout =
        c.containsFields("timeout_ms")
            ? Duration.ofMillis((long) c.getFieldsOrThrow("timeout_ms").getNumberValue())
            : null;
    String rpc = text(c, "rpc");
    if (rpc.equals("Batch")) {
      runBatch(c, expect);
    } else {
      Object reply = null;
      TiergateException error = null;
      try {
        reply = call(rpc, c.getFieldsOrThrow("request"), timeout, future);
      } catch (TiergateException failed) {
        error = failed;
      }
      if (text(expect, "code").equals("OK")) {
        if (error != null) {
          fail("the call failed: " + error.getMessage());
        }
        if (reply instanceof List<?> messages) {
          reply = checkStream(messages, expect);
        }
        checkSuccess(assertInstanceOf(Message.class, reply), expect);
      } else {
        assertNotNull(error, "the call succeeded, want " + text(expect, "code"));
        checkFailure(error, expect);
      }
    }
    if (expect.containsFields("upstream_requests")) {
      long want = (long) expect.getFieldsOrThrow("upstream_requests").getNumberValue();
      Value requests = parse(get("/_emulator/requests")).getFieldsOrThrow("requests");
      assertEquals(want, requests.getListValue().getValuesCount(), "upstream requests");
    }
  }

  /**
   * Parses the case's request into the RPC's request type (read from the service descriptor) and
   * calls the client's method of the same name: no case per RPC.
   */
  private static Object call(String rpc, Value request, Duration timeout, boolean future)
      throws Exception {
    if (rpc.startsWith("Stream")) {
      return stream(rpc, request, timeout, future);
    }
    MethodDescriptor<?, ?> method =
        TaskServiceGrpc.getServiceDescriptor().getMethods().stream()
            .filter(m -> rpc.equals(m.getBareMethodName()))
            .findFirst()
            .orElseThrow(() -> new AssertionError("unknown rpc " + rpc));
    var prototype =
        (Message) ((MethodDescriptor.PrototypeMarshaller<?>) method.getRequestMarshaller())
            .getMessagePrototype();
    Message.Builder builder = prototype.newBuilderForType();
    JsonFormat.parser().merge(print(request), builder);
    String name = Character.toLowerCase(rpc.charAt(0)) + rpc.substring(1) + (future ? "Async" : "");
    var typed = TiergateClient.class.getMethod(name, prototype.getClass(), Duration.class);
    try {
      Object reply = typed.invoke(client, builder.build(), timeout);
      if (!future) {
        return reply;
      }
      try {
        return ((CompletableFuture<?>) reply).get(60, TimeUnit.SECONDS);
      } catch (ExecutionException failed) {
        throw assertInstanceOf(TiergateException.class, failed.getCause());
      }
    } catch (InvocationTargetException failed) {
      throw assertInstanceOf(TiergateException.class, failed.getCause());
    }
  }

  /**
   * Rule 8: reads the whole stream, through the iterator or the observer, as a list of messages;
   * a failure is thrown as the TiergateException it ended with.
   */
  private static List<?> stream(String rpc, Value request, Duration timeout, boolean future)
      throws Exception {
    MethodDescriptor<?, ?> method =
        StreamServiceGrpc.getServiceDescriptor().getMethods().stream()
            .filter(m -> rpc.equals(m.getBareMethodName()))
            .findFirst()
            .orElseThrow(() -> new AssertionError("unknown rpc " + rpc));
    var prototype =
        (Message) ((MethodDescriptor.PrototypeMarshaller<?>) method.getRequestMarshaller())
            .getMessagePrototype();
    Message.Builder builder = prototype.newBuilderForType();
    JsonFormat.parser().merge(print(request), builder);
    String name = Character.toLowerCase(rpc.charAt(0)) + rpc.substring(1);
    try {
      if (!future) {
        var typed = TiergateClient.class.getMethod(name, prototype.getClass(), Duration.class);
        List<Object> messages = new ArrayList<>();
        try (var stream = (ResponseStream<?>) typed.invoke(client, builder.build(), timeout)) {
          stream.forEachRemaining(messages::add);
        }
        return messages;
      }
      var typed =
          TiergateClient.class.getMethod(
              name + "Async", prototype.getClass(), Duration.class, StreamObserver.class);
      CompletableFuture<List<Object>> done = new CompletableFuture<>();
      List<Object> messages = new ArrayList<>();
      typed.invoke(
          client,
          builder.build(),
          timeout,
          new StreamObserver<Object>() {
            @Override
            public void onNext(Object message) {
              messages.add(message);
            }

            @Override
            public void onError(Throwable error) {
              done.completeExceptionally(error);
            }

            @Override
            public void onCompleted() {
              done.complete(messages);
            }
          });
      try {
        return done.get(60, TimeUnit.SECONDS);
      } catch (ExecutionException failed) {
        throw assertInstanceOf(TiergateException.class, failed.getCause());
      }
    } catch (InvocationTargetException failed) {
      throw assertInstanceOf(TiergateException.class, failed.getCause());
    }
  }

  /** Rule 8's checks of a complete stream; returns the last message's response. */
  private static Message checkStream(List<?> messages, Struct expect) {
    long least =
        (long)
            expect
                .getFieldsOrThrow("stream")
                .getStructValue()
                .getFieldsOrThrow("min_messages")
                .getNumberValue();
    assertTrue(messages.size() >= least, messages.size() + " messages, want " + least);
    Message last = null;
    for (int i = 0; i < messages.size(); i++) {
      var message = assertInstanceOf(Message.class, messages.get(i));
      var fields = message.getDescriptorForType();
      boolean complete = (boolean) message.getField(fields.findFieldByName("complete"));
      var response = (Message) message.getField(fields.findFieldByName("response"));
      boolean usage = response.hasField(response.getDescriptorForType().findFieldByName("usage"));
      boolean isLast = i == messages.size() - 1;
      assertEquals(isLast, complete, "message " + i + ": complete");
      assertEquals(isLast, usage, "message " + i + ": usage");
      last = response;
    }
    return last;
  }

  private static void checkSuccess(MessageOrBuilder reply, Struct expect) throws IOException {
    String json =
        JsonFormat.printer()
            .preservingProtoFieldNames()
            .alwaysPrintFieldsWithNoPresence()
            .print(reply);
    Value doc = Value.newBuilder().setStructValue(parse(json)).build();
    Struct usage = at(doc, "usage").getStructValue();
    Struct cost = usage.getFieldsOrThrow("cost").getStructValue();
    assertEquals(text(expect, "tier"), text(usage, "tier"), "usage.tier");
    assertTrue(!text(usage, "model").isEmpty(), "usage.model is empty");
    for (String field : new String[] {"input_tokens", "output_tokens"}) {
      assertTrue(whole(usage.getFieldsOrThrow(field)) > 0, "usage." + field + " is not above 0");
    }
    long total = whole(cost.getFieldsOrThrow("total_nanos"));
    long sum = 0;
    for (String part : COST_PARTS) {
      sum += whole(cost.getFieldsOrThrow(part));
    }
    assertTrue(total > 0 && total == sum, "cost.total_nanos " + total + ", parts sum to " + sum);
    if (!expect.containsFields("fields")) {
      return;
    }
    for (var entry : expect.getFieldsOrThrow("fields").getStructValue().getFieldsMap().entrySet()) {
      checkField(entry.getKey(), at(doc, entry.getKey()), entry.getValue().getStructValue());
    }
  }

  private static void checkField(String path, Value value, Struct check) {
    if (check.containsFields("equals")) {
      assertEquals(check.getFieldsOrThrow("equals"), value, path);
    }
    if (check.containsFields("one_of")) {
      var options = check.getFieldsOrThrow("one_of").getListValue().getValuesList();
      assertTrue(options.contains(value), path + ": " + print(value) + " not one of " + options);
    }
    if (check.containsFields("non_empty") && check.getFieldsOrThrow("non_empty").getBoolValue()) {
      boolean nonEmpty =
          switch (value.getKindCase()) {
            case STRING_VALUE -> !value.getStringValue().isEmpty();
            case LIST_VALUE -> value.getListValue().getValuesCount() > 0;
            case STRUCT_VALUE -> value.getStructValue().getFieldsCount() > 0;
            default -> false;
          };
      assertTrue(nonEmpty, path + ": " + print(value) + " is empty or not a string, list, object");
    }
    if (check.containsFields("between")) {
      var bounds = check.getFieldsOrThrow("between").getListValue();
      double n = number(value);
      double low = bounds.getValues(0).getNumberValue();
      double high = bounds.getValues(1).getNumberValue();
      assertTrue(low <= n && n <= high, path + ": " + n + " not in [" + low + ", " + high + "]");
    }
  }

  private static void checkFailure(TiergateException error, Struct expect) {
    assertEquals(text(expect, "code"), error.code().name(), "code (" + error.getMessage() + ")");
    if (expect.containsFields("reason")) {
      assertEquals(text(expect, "reason"), error.reason(), "ErrorInfo reason");
      assertEquals(TiergateException.DOMAIN, error.domain(), "ErrorInfo domain");
    }
    if (expect.containsFields("violations")) {
      List<String> want = new ArrayList<>();
      for (Value field : expect.getFieldsOrThrow("violations").getListValue().getValuesList()) {
        want.add(field.getStringValue());
      }
      List<String> got = new ArrayList<>();
      error.violations().forEach(v -> got.add(v.field()));
      got.sort(null);
      assertEquals(want, got, "violations");
    }
  }

  /** Creates the case's batch, waits until it ended and checks its results (rule 7). */
  private static void runBatch(Struct c, Struct expect) throws Exception {
    var request = CreateBatchRequest.newBuilder();
    JsonFormat.parser().merge(print(c.getFieldsOrThrow("request")), request);
    Batch batch;
    try {
      batch = client.createBatch(request.getItemsList());
    } catch (TiergateException error) {
      assertTrue(!text(expect, "code").equals("OK"), "createBatch failed: " + error.getMessage());
      checkFailure(error, expect);
      return;
    }
    assertEquals("OK", text(expect, "code"), "createBatch succeeded");
    long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!Batches.ended(batch)) {
      assertTrue(System.nanoTime() < giveUp, "the batch never ended");
      Thread.sleep(50);
      batch = client.getBatch(batch.getName());
    }
    Struct want = expect.getFieldsOrThrow("batch").getStructValue();
    assertEquals(text(want, "state"), batch.getState().name(), "batch state");
    List<String> ids = new ArrayList<>();
    long total = 0;
    for (BatchResult result : client.batchResults(batch.getName())) {
      ids.add(result.getCustomId());
      assertTrue(!result.hasError(), result.getCustomId() + ": " + result.getError());
      var usage = result.getUsage();
      assertEquals("batch", usage.getServiceTier(), result.getCustomId() + ": service tier");
      assertTrue(usage.getCost().getTotalNanos() > 0, result.getCustomId() + ": cost");
      total += usage.getCost().getTotalNanos();
    }
    List<String> wantIds = new ArrayList<>();
    want.getFieldsOrThrow("results").getListValue().getValuesList()
        .forEach(v -> wantIds.add(v.getStringValue()));
    assertEquals(wantIds, ids, "result ids");
    assertEquals(total, batch.getUsage().getCost().getTotalNanos(), "batch cost = sum of items");
  }

  // -- JSON, as protobuf's own Struct and Value -------------------------------------------------

  private static Struct parse(String json) throws InvalidProtocolBufferException {
    var struct = Struct.newBuilder();
    JsonFormat.parser().merge(json, struct);
    return struct.build();
  }

  private static String print(MessageOrBuilder value) {
    try {
      return JsonFormat.printer().omittingInsignificantWhitespace().print(value);
    } catch (InvalidProtocolBufferException unprintable) {
      throw new IllegalStateException(unprintable);
    }
  }

  private static String text(Struct struct, String field) {
    return struct.getFieldsOrThrow(field).getStringValue();
  }

  /** The value at a dotted path; a number indexes a list. */
  private static Value at(Value doc, String path) {
    for (String part : path.split("\\.")) {
      switch (doc.getKindCase()) {
        case STRUCT_VALUE -> {
          var fields = doc.getStructValue().getFieldsMap();
          assertTrue(fields.containsKey(part), path + ": no " + part);
          doc = fields.get(part);
        }
        case LIST_VALUE -> {
          int index = Integer.parseInt(part);
          assertTrue(index < doc.getListValue().getValuesCount(), path + ": no item " + part);
          doc = doc.getListValue().getValues(index);
        }
        default -> fail(path + ": " + part + " of a scalar");
      }
    }
    return doc;
  }

  /** A JSON number; int64 fields are strings in proto3 JSON. */
  private static double number(Value value) {
    return value.hasStringValue()
        ? Double.parseDouble(value.getStringValue())
        : value.getNumberValue();
  }

  private static long whole(Value value) {
    return value.hasStringValue()
        ? Long.parseLong(value.getStringValue())
        : (long) value.getNumberValue();
  }

  private static void post(String route, String body) throws IOException, InterruptedException {
    var request =
        HttpRequest.newBuilder(URI.create(emulator + route))
            .timeout(CONTROL_TIMEOUT)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    var reply = send(request);
    assertEquals(200, reply.statusCode(), "POST " + route);
  }

  private static String get(String route) throws IOException, InterruptedException {
    var request =
        HttpRequest.newBuilder(URI.create(emulator + route)).timeout(CONTROL_TIMEOUT).GET().build();
    var reply = send(request);
    assertEquals(200, reply.statusCode(), "GET " + route);
    return reply.body();
  }

  private static HttpResponse<String> send(HttpRequest request)
      throws IOException, InterruptedException {
    try {
      return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (HttpTimeoutException stalled) {
      // The stalled connection is dropped with the timeout: once more, on a fresh one.
      return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    }
  }
}
