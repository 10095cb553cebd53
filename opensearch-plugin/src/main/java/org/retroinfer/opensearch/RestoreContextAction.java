package org.retroinfer.opensearch;

import java.io.IOException;
import java.util.Map;
import org.opensearch.action.ActionRequestValidationException;
import org.opensearch.action.ActionType;
import org.opensearch.action.support.single.shard.SingleShardRequest;
import org.opensearch.core.action.ActionResponse;
import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.common.io.stream.StreamOutput;

/**
 * Serves a context from its K/V vector fields: on a node holding a copy of the index's shard, the
 * context's blocks are found by their tags in the shard's segments, put back together without
 * clustering ({@link org.retroinfer.lucene.AssignedLayout#restore}) and packed
 * ({@link org.retroinfer.store.ContextPack#build}) with the record its head holds.
 */
final class RestoreContextAction extends ActionType<RestoreContextAction.Response> {
  static final String NAME = "indices:data/read/retroinfer/context/restore";
  static final RestoreContextAction INSTANCE = new RestoreContextAction();

  private RestoreContextAction() {
    super(NAME, Response::new);
  }

  /** The context's id and its head document (the caller has checked that it may see it). */
  static final class Request extends SingleShardRequest<Request> {
    final String id;
    final Map<String, Object> head;

    Request(String index, String id, Map<String, Object> head) {
      super(index);
      this.id = id;
      this.head = head;
    }

    Request(StreamInput in) throws IOException {
      super(in);
      id = in.readString();
      head = in.readMap();
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
      super.writeTo(out);
      out.writeString(id);
      out.writeMap(head);
    }

    @Override
    public ActionRequestValidationException validate() {
      return validateNonNullIndex();
    }
  }

  /** The context's pack. */
  static final class Response extends ActionResponse {
    final byte[] pack;

    Response(byte[] pack) {
      this.pack = pack;
    }

    Response(StreamInput in) throws IOException {
      super(in);
      pack = in.readByteArray();
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
      out.writeByteArray(pack);
    }
  }
}
