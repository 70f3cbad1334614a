package tiergate.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import tiergate.v1.BatchServiceOuterClass.Batch;
import tiergate.v1.BatchServiceOuterClass.BatchItem;
import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateResponse;

/** The dial target and the batch helpers. */
class DialingTest {
  @Test
  void aBareHostIsDialedThroughDnsAndASchemeIsKept() {
    Map<String, String> cases =
        Map.of(
            "tiergate.prod:50051", "dns:///tiergate.prod:50051",
            "localhost:50051", "dns:///localhost:50051",
            "dns:///a:1", "dns:///a:1",
            "unix:/run/tg.sock", "unix:/run/tg.sock",
            "passthrough:///x:1234", "passthrough:///x:1234");
    cases.forEach((target, dialed) -> assertEquals(dialed, Dialing.target(target), target));
  }

  @Test
  void aBatchItemHoldsItsRequestInTheMatchingField() {
    var classify = ClassifyRequest.newBuilder().setText("charged twice").build();
    BatchItem item = Batches.item("t-1", classify);
    assertEquals("t-1", item.getCustomId());
    assertEquals(BatchItem.RequestCase.CLASSIFY, item.getRequestCase());
    assertEquals(classify, item.getClassify());
    var moderate = Batches.item("t-2", ModerateRequest.newBuilder().setText("fine").build());
    assertEquals(BatchItem.RequestCase.MODERATE, moderate.getRequestCase());
  }

  @Test
  void aMessageThatIsNotATaskRequestIsRefused() {
    assertThrows(
        IllegalArgumentException.class,
        () -> Batches.item("t-1", ModerateResponse.getDefaultInstance()));
  }

  @Test
  void succeededFailedAndCancelledBatchesHaveEnded() {
    for (Batch.State state : Batch.State.values()) {
      if (state == Batch.State.UNRECOGNIZED) {
        continue;
      }
      boolean ended = Batches.ended(Batch.newBuilder().setState(state).build());
      assertEquals(state.name().matches("STATE_(SUCCEEDED|FAILED|CANCELLED)"), ended, state.name());
    }
    assertFalse(Batches.ended(Batch.getDefaultInstance()));
    assertTrue(Batches.ENDED.contains(Batch.State.STATE_SUCCEEDED));
  }
}
