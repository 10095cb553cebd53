package org.retroinfer.opensearch;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.node.DiscoveryNodes;
import org.opensearch.common.settings.ClusterSettings;
import org.opensearch.common.settings.IndexScopedSettings;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.settings.SettingsFilter;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.codec.AdditionalCodecs;
import org.opensearch.index.mapper.Mapper;
import org.opensearch.plugins.ActionPlugin;
import org.opensearch.plugins.EnginePlugin;
import org.opensearch.plugins.MapperPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.rest.RestController;
import org.opensearch.rest.RestHandler;
import org.retroinfer.lucene.WaveCodec;

/**
 * The RetroInfer plugin for OpenSearch 3.5.0.
 *
 * <ul>
 *   <li>{@link EnginePlugin#getAdditionalCodecs}: every index may choose
 *       {@code "index.codec": "retroinfer_wave"}: the server's own default codec with the K/V
 *       fields of contexts routed to the {@code RetroInferWave} vectors format
 *       ({@link ServerWaveCodec}). It composes with other plugins' codecs. lucene-codec's
 *       {@link WaveCodec} ({@value WaveCodec#NAME}) is found through SPI as well.
 *   <li>{@link MapperPlugin#getMappers}: the field type {@code retroinfer_kv}
 *       ({@link KvVectorFieldMapper}), a context's K/V rows as vector fields in the wave format's
 *       assigned layout, which the contexts' index maps under its nested field {@code kv}.
 *   <li>{@link ActionPlugin#getActions}: {@link RestoreContextAction}, which serves a context
 *       from its K/V vector fields on a node holding a copy of the shard.
 *   <li>{@link ActionPlugin#getRestHandlers}: the context API under {@code /_retroinfer/}
 *       ({@link ContextRestHandler}).
 * </ul>
 */
public final class RetroInferPlugin extends Plugin implements EnginePlugin, ActionPlugin,
    MapperPlugin {

  @Override
  public Optional<AdditionalCodecs> getAdditionalCodecs(IndexSettings indexSettings) {
    return Optional.of((mapperService, settings, defaultCodec) ->
        Map.of(ServerWaveCodec.ALIAS, new ServerWaveCodec(defaultCodec.get())));
  }

  @Override
  public Map<String, Mapper.TypeParser> getMappers() {
    return Map.of(KvVectorFieldMapper.CONTENT_TYPE, KvVectorFieldMapper.PARSER);
  }

  /**
   * Whether a put also keeps the context's pack (in parts), from which a get is then served as it
   * was sent; without it, a get builds the pack from the K/V vector fields. Per index, dynamic.
   */
  public static final org.opensearch.common.settings.Setting<Boolean> KEEP_PACK =
      org.opensearch.common.settings.Setting.boolSetting("index.retroinfer.keep_pack", true,
          org.opensearch.common.settings.Setting.Property.IndexScope,
          org.opensearch.common.settings.Setting.Property.Dynamic);

  @Override
  public List<org.opensearch.common.settings.Setting<?>> getSettings() {
    return List.of(KEEP_PACK);
  }

  @Override
  public List<ActionHandler<? extends org.opensearch.action.ActionRequest,
      ? extends org.opensearch.core.action.ActionResponse>> getActions() {
    return List.of(new ActionHandler<>(RestoreContextAction.INSTANCE,
        TransportRestoreContextAction.class));
  }

  @Override
  public List<RestHandler> getRestHandlers(Settings settings, RestController restController,
      ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings,
      SettingsFilter settingsFilter, IndexNameExpressionResolver resolver,
      Supplier<DiscoveryNodes> nodes) {
    return List.of(new ContextRestHandler());
  }
}
