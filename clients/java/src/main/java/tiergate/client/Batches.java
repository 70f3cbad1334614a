package tiergate.client;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.util.Set;
import tiergate.v1.BatchServiceOuterClass.Batch;
import tiergate.v1.BatchServiceOuterClass.BatchItem;

/** Batch items for {@code BatchService} (half price), and when a batch has ended. */
public final class Batches {
  private Batches() {}

  /** The states a batch never leaves. */
  public static final Set<Batch.State> ENDED =
      Set.of(Batch.State.STATE_SUCCEEDED, Batch.State.STATE_FAILED, Batch.State.STATE_CANCELLED);

  /**
   * The item for {@code request} (any of the six task requests) under the caller's id, e.g. {@code
   * Batches.item("t-1", ClassifyRequest.newBuilder()...build())}.
   *
   * @throws IllegalArgumentException when {@code request} is not a task request
   */
  public static BatchItem item(String customId, Message request) {
    // The field of the item's oneof whose type is the request's: a new task needs no code here.
    FieldDescriptor field = null;
    for (FieldDescriptor candidate : BatchItem.getDescriptor().getFields()) {
      if (candidate.getRealContainingOneof() != null
          && candidate.getJavaType() == FieldDescriptor.JavaType.MESSAGE
          && candidate.getMessageType() == request.getDescriptorForType()) {
        field = candidate;
      }
    }
    if (field == null) {
      throw new IllegalArgumentException(
          request.getDescriptorForType().getName() + " is not a task request");
    }
    return BatchItem.newBuilder().setCustomId(customId).setField(field, request).build();
  }

  /** Whether {@code batch} is in a state it never leaves. */
  public static boolean ended(Batch batch) {
    return ENDED.contains(batch.getState());
  }
}
