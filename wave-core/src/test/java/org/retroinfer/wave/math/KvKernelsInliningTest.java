package org.retroinfer.wave.math;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import org.junit.jupiter.api.Test;

/**
 * The vector load helpers that the kernels call at many sites must stay within C2's always-inline
 * bytecode size (MaxInlineSize, 35 bytes): a site that C2 does not inline passes its vector through
 * the heap and runs the operations after it in the Vector API's slow Java fallback. Nothing else
 * would notice when an edit grows one of them by a byte (it happened once: 36 bytes).
 */
class KvKernelsInliningTest {
  static final int MAX_INLINE_SIZE = 35;

  @Test
  void loadHelpersFitTheAlwaysInlineSize() throws IOException {
    ClassModel kernels;
    try (InputStream in = KvKernels.class.getResourceAsStream("KvKernels.class")) {
      kernels = ClassFile.of().parse(in.readAllBytes());
    }
    for (String name : new String[] {"loadBf16", "loadF16", "loadShorts", "loadF32"}) {
      MethodModel method = kernels.methods().stream()
          .filter(m -> m.methodName().equalsString(name))
          .findFirst()
          .orElseThrow(() -> new AssertionError("KvKernels." + name + " not found"));
      int size = method.findAttribute(Attributes.code()).orElseThrow().codeLength();
      assertTrue(size <= MAX_INLINE_SIZE, "KvKernels." + name + " is " + size
          + " bytes of bytecode; C2 inlines methods of at most " + MAX_INLINE_SIZE
          + " bytes at every site, larger ones only where it counts the site hot");
    }
  }
}
