package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class StoreDamagedExceptionTest {
  private static final Path COPY = Path.of("/tmp/retroinfer-explain123/context");
  private static final String URL = "http://127.0.0.1:9200/contexts";

  @Test
  void aLocalStoresMessageSendsTheUserToItsDirectory() {
    StoreDamagedException e = new StoreDamagedException(Path.of("/data/store"), "c1",
        "index/_0.cfs (part _0.wvd)", "checksum failed", null);
    assertEquals("the store is damaged: context c1, file index/_0.cfs (part _0.wvd), checksum"
        + " failed; nothing damaged was served. Run 'retroinfer inspect /data/store' to check every"
        + " file. The store is a cache: move it aside and put the contexts again, or restore it"
        + " from a backup", e.getMessage());
    assertEquals(Optional.empty(), e.remote());
  }

  @Test
  void aContextFetchedFromARemoteStoreIsNamedThereNotByItsRemovedCopy() {
    StoreDamagedException local = new StoreDamagedException(COPY, null,
        "index/_0.cfs (part _0.wvd)", "checksum failed", null);
    StoreDamagedException e = local.fetchedFrom(URL, "c1", false, false);
    assertEquals("the store is damaged: context c1 of the remote store " + URL + ", file"
        + " index/_0.cfs (part _0.wvd) of it as fetched, checksum failed; nothing damaged was"
        + " served. Run 'retroinfer inspect " + URL + "' to check its contexts; the store is a"
        + " cache: delete it with 'retroinfer store delete --store " + URL + " c1' and put it"
        + " again with 'retroinfer store put --store " + URL + "' and its prompt", e.getMessage());
    assertEquals(Optional.of(URL), e.remote());
    assertEquals(Optional.of("c1"), e.context());
    assertEquals("checksum failed", e.what());
    assertSame(local, e.getCause(), "the damage as found, for RETROINFER_DEBUG's stack trace");
    assertFalse(e.getMessage().contains(COPY.toString()));
    // naming a context again (as ContextStore's read paths do) keeps the remote message
    assertSame(e, StoreDamagedException.of(COPY, "c2", e));
  }

  @Test
  void withATenantOrSeveralContextsTheSuggestedCommandsSaySo() {
    StoreDamagedException local = new StoreDamagedException(COPY, null, null, "CheckIndex found"
        + " damage: NOT clean", null);
    String one = local.fetchedFrom(URL, "c1", true, false).getMessage();
    assertTrue(one.startsWith("the store is damaged: context c1 of the remote store " + URL
        + ", CheckIndex found damage: NOT clean; "), one);
    assertTrue(one.endsWith("and its prompt (each with the same --tenant)"), one);
    String two = local.fetchedFrom(URL, "c1, c2", false, true).getMessage();
    assertTrue(two.startsWith("the store is damaged: contexts c1, c2 of the remote store " + URL),
        two);
    assertTrue(two.contains("; nothing damaged was served. The store is a cache: delete each with"
        + " 'retroinfer store delete --store " + URL + " ID'"), "found by inspect, which it does"
        + " not suggest again: " + two);
    // the context the damage already names, when the caller passes none
    String named = new StoreDamagedException(COPY, "c3", null, "x", null)
        .fetchedFrom(URL, null, false, false).getMessage();
    assertTrue(named.startsWith("the store is damaged: context c3 of the remote store ")
        && named.contains("store delete --store " + URL + " c3'"), named);
    String unknown = new StoreDamagedException(COPY, null, null, "x", null)
        .fetchedFrom(URL, null, false, false).getMessage();
    assertTrue(unknown.startsWith("the store is damaged: a context of the remote store " + URL)
        && unknown.contains("delete it with 'retroinfer store delete --store " + URL + " ID'"),
        unknown);
    for (String m : new String[] {one, two, named, unknown}) {
      assertEquals(1, m.lines().count(), m);
    }
  }
}
