package org.retroinfer.store.tier;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.hash.serialization.SizedReader;
import net.openhft.chronicle.hash.serialization.SizedWriter;
import net.openhft.chronicle.core.util.ReadResolvable;

/**
 * The key of one cluster block in the {@link ClusterBlockTier}: which live context (a slot number
 * given by its owner), layer, KV head and cluster id. Stored as 16 fixed bytes.
 */
public record BlockKey(int contextSlot, int layer, int kvHead, int cluster) {

  /** 16 bytes, fixed: four little-endian ints. */
  public static final class Marshaller implements SizedReader<BlockKey>, SizedWriter<BlockKey>,
      ReadResolvable<Marshaller> {
    /** Stateless: one instance (Chronicle records the class in the map file's header). */
    public static final Marshaller INSTANCE = new Marshaller();

    @Override
    public Marshaller readResolve() {
      return INSTANCE;
    }

    @Override
    public long size(BlockKey k) {
      return 16;
    }

    @Override
    public void write(Bytes<?> out, long size, BlockKey k) {
      out.writeInt(k.contextSlot).writeInt(k.layer).writeInt(k.kvHead).writeInt(k.cluster);
    }

    @Override
    public BlockKey read(Bytes<?> in, long size, BlockKey using) {
      return new BlockKey(in.readInt(), in.readInt(), in.readInt(), in.readInt());
    }
  }
}
