package org.retroinfer.lucene;

import org.apache.lucene.index.FieldInfo;
import org.retroinfer.lucene.WaveVectorsFormat.Layout;
import org.retroinfer.lucene.WaveVectorsFormat.Settings;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * The clustering parameters of one field: its attributes where present, else the format's
 * settings. Parsing never throws (a writer's {@code addField} must not fail, Lucene would abort
 * the whole segment): a bad attribute is kept as {@link #error()}, and every vector added to the
 * field is rejected with that message instead.
 */
record FieldParams(Layout layout, int segmentTokens, int tokensPerCluster, int iterations,
    KvDType storage, float[] centre, String error) {

  static FieldParams of(FieldInfo info, Settings settings) {
    String name = info.name;
    try {
      Layout layout = Layout.parse(name, info.getAttribute(WaveVectorsFormat.ATTR_LAYOUT));
      int segmentTokens = intAttribute(info, WaveVectorsFormat.ATTR_SEGMENT_TOKENS,
          settings.segmentTokens());
      int tokensPerCluster = intAttribute(info, WaveVectorsFormat.ATTR_TOKENS_PER_CLUSTER,
          settings.tokensPerCluster());
      int iterations = intAttribute(info, WaveVectorsFormat.ATTR_ITERATIONS,
          settings.kmeansIterations());
      KvDType storage = settings.storage();
      String s = info.getAttribute(WaveVectorsFormat.ATTR_STORAGE);
      if (s != null) {
        try {
          storage = KvDType.valueOf(s);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("field '" + name + "': attribute "
              + WaveVectorsFormat.ATTR_STORAGE + "='" + s + "' is not one of FLOAT32, FLOAT16,"
              + " BFLOAT16");
        }
      }
      if (tokensPerCluster < 1 || segmentTokens < tokensPerCluster || iterations < 0) {
        throw new IllegalArgumentException("field '" + name + "': need 1 <= tokensPerCluster <="
            + " segmentTokens and iterations >= 0, got tokensPerCluster " + tokensPerCluster
            + ", segmentTokens " + segmentTokens + ", iterations " + iterations);
      }
      if (layout == Layout.ASSIGNED && info.getVectorDimension() <= AssignedLayout.TRAILING) {
        throw new IllegalArgumentException("field '" + name + "': the assigned layout needs a"
            + " dimension of the head dim plus " + AssignedLayout.TRAILING + ", got "
            + info.getVectorDimension());
      }
      float[] centre = layout == Layout.ASSIGNED ? null : centre(info);
      return new FieldParams(layout, segmentTokens, tokensPerCluster, iterations, storage, centre,
          null);
    } catch (IllegalArgumentException e) {
      return new FieldParams(Layout.SPLIT, settings.segmentTokens(), settings.tokensPerCluster(),
          settings.kmeansIterations(), settings.storage(), null,
          e.getMessage() + "; fix the field type's attributes");
    }
  }

  private static float[] centre(FieldInfo info) {
    String v = info.getAttribute(WaveVectorsFormat.ATTR_CENTRE);
    if (v == null) {
      return null;
    }
    float[] centre = decodeCentre(v);
    if (centre == null || centre.length != info.getVectorDimension()) {
      throw new IllegalArgumentException("field '" + info.name + "': attribute "
          + WaveVectorsFormat.ATTR_CENTRE + " is not " + info.getVectorDimension()
          + " finite floats in hexadecimal bits");
    }
    return centre;
  }

  /** The attribute text of a key centre: each float's bits in hexadecimal, comma-separated. */
  static String encodeCentre(float[] centre) {
    StringBuilder b = new StringBuilder(centre.length * 9);
    for (int i = 0; i < centre.length; i++) {
      if (i > 0) {
        b.append(',');
      }
      b.append(Integer.toHexString(Float.floatToRawIntBits(centre[i])));
    }
    return b.toString();
  }

  /** The key centre of {@link #encodeCentre}'s text, or null if it is malformed or not finite. */
  static float[] decodeCentre(String text) {
    String[] parts = text.split(",", -1);
    float[] centre = new float[parts.length];
    try {
      for (int i = 0; i < parts.length; i++) {
        centre[i] = Float.intBitsToFloat(Integer.parseUnsignedInt(parts[i], 16));
        if (!Float.isFinite(centre[i])) {
          return null;
        }
      }
    } catch (NumberFormatException e) {
      return null;
    }
    return centre;
  }

  private static int intAttribute(FieldInfo info, String key, int fallback) {
    String v = info.getAttribute(key);
    if (v == null) {
      return fallback;
    }
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("field '" + info.name + "': attribute " + key + "='" + v
          + "' is not an integer");
    }
  }

  /** The wave-core configuration whose segment and cluster rules these parameters select. */
  WaveConfig waveConfig() {
    WaveConfig d = WaveConfig.defaults();
    return WaveConfig.builder()
        .segmentTokens(segmentTokens)
        .tokensPerCluster(tokensPerCluster)
        .updateTokens(Math.max(d.updateTokens(), tokensPerCluster))
        .kmeansIterations(iterations)
        .kvType(storage)
        .build();
  }
}
