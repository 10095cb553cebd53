package org.retroinfer.opensearch;

import java.io.IOException;
import org.apache.lucene.index.IndexReader;
import org.opensearch.action.support.ActionFilters;
import org.opensearch.action.support.single.shard.TransportSingleShardAction;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.routing.ShardsIterator;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.inject.Inject;
import org.opensearch.core.common.io.stream.Writeable;
import org.opensearch.core.index.shard.ShardId;
import org.opensearch.index.engine.Engine;
import org.opensearch.index.shard.IndexShard;
import org.opensearch.indices.IndicesService;
import org.opensearch.threadpool.ThreadPool;
import org.opensearch.transport.TransportService;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.store.ContextPack;

/**
 * Runs {@link RestoreContextAction} on a copy of the shard that holds the context's head (the
 * index has one shard, so its blocks are there too): any copy, primary or replica, since every
 * copy holds the same blocks.
 */
public final class TransportRestoreContextAction
    extends TransportSingleShardAction<RestoreContextAction.Request, RestoreContextAction.Response> {
  private final IndicesService indices;

  @Inject
  public TransportRestoreContextAction(ThreadPool threadPool, ClusterService clusterService,
      TransportService transportService, ActionFilters actionFilters,
      IndexNameExpressionResolver resolver, IndicesService indices) {
    super(RestoreContextAction.NAME, threadPool, clusterService, transportService, actionFilters,
        resolver, RestoreContextAction.Request::new, ThreadPool.Names.GET);
    this.indices = indices;
  }

  @Override
  protected RestoreContextAction.Response shardOperation(RestoreContextAction.Request request,
      ShardId shardId) throws IOException {
    IndexShard shard = indices.indexServiceSafe(shardId.getIndex()).getShard(shardId.id());
    AssignedLayout.ContextPlan plan = ServedContext.plan(request.head);
    try (Engine.Searcher searcher = shard.acquireSearcher("retroinfer_restore")) {
      IndexReader reader = searcher.getIndexReader();
      // read in place from the shard's mapped files while the searcher is held
      try (LoadedContext context = AssignedLayout.restore(reader, request.id, plan, true)) {
        return new RestoreContextAction.Response(ContextPack.build(
            ServedContext.info(request.head),
            ((Number) request.head.get("chunk_tokens")).intValue(),
            ServedContext.prefixKeys(request.head), plan.tokens(),
            ServedContext.logits(request.head), context));
      }
    }
  }

  @Override
  protected Writeable.Reader<RestoreContextAction.Response> getResponseReader() {
    return RestoreContextAction.Response::new;
  }

  @Override
  protected boolean resolveIndex(RestoreContextAction.Request request) {
    return true;
  }

  @Override
  protected ShardsIterator shards(ClusterState state, InternalRequest request) {
    // this node's copy when it has one: the pack (tens of MB) then crosses no transport
    return clusterService.operationRouting().getShards(state, request.concreteIndex(),
        request.request().id, null, "_local");
  }
}
