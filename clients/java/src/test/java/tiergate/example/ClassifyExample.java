package tiergate.example;

import tiergate.client.TiergateClient;
import tiergate.client.TiergateException;
import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;
import tiergate.v1.TaskServiceOuterClass.ClassifyResponse;
import tiergate.v1.TaskServiceOuterClass.Label;
import tiergate.v1.UsageOuterClass.Usage;

/**
 * Classifies a support ticket with tiergate and prints the label and its cost.
 *
 * <pre>
 * mvn -q test-compile exec:java        # TIERGATE_TARGET defaults to localhost:50051
 * </pre>
 */
public final class ClassifyExample {
  private ClassifyExample() {}

  public static void main(String[] args) {
    String target = System.getenv().getOrDefault("TIERGATE_TARGET", "localhost:50051");
    var request =
        ClassifyRequest.newBuilder()
            .setText("I was charged twice for my subscription this month.")
            .addLabels(Label.newBuilder().setName("billing"))
            .addLabels(Label.newBuilder().setName("technical"))
            .addLabels(Label.newBuilder().setName("account"))
            .build();
    try (TiergateClient client = TiergateClient.connect(target)) {
      ClassifyResponse reply = client.classify(request);
      Usage usage = reply.getUsage();
      System.out.printf("label %s (confidence %.2f)%n", reply.getLabel(), reply.getConfidence());
      System.out.printf(
          "%s: %d input, %d output tokens, $%.6f%n",
          usage.getModel(),
          usage.getInputTokens(),
          usage.getOutputTokens(),
          usage.getCost().getTotalNanos() / 1e9);
    } catch (TiergateException e) {
      for (var v : e.violations()) {
        System.err.printf("invalid %s: %s%n", v.field(), v.description());
      }
      // e.g. "INVALID_ARGUMENT (INVALID_REQUEST): ...", and RetryInfo's delay when sent
      System.err.println(e.getMessage());
      e.retryAfter().ifPresent(delay -> System.err.println("retry after " + delay));
      System.exit(1);
    }
  }
}
