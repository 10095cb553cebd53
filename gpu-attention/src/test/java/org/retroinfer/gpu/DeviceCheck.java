package org.retroinfer.gpu;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
import java.util.Arrays;
import org.junit.platform.engine.discovery.ClassNameFilter;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;
import org.junit.platform.engine.TestExecutionResult;
import org.retroinfer.gpu.bench.DecodeBenchmark;
import org.retroinfer.gpu.cuda.CudaAvailability;

/**
 * The device check, run on the GPU machine where there is no Maven. One phase per JVM, so that
 * {@code run.sh} can give each its own time limit and a hang in one loses none of the others:
 *
 * <ul>
 *   <li>{@code gpu-tests}: the GPU tests ({@link GpuAttentionTest}); they must run, not skip. Each
 *       test's result and time is printed as it ends.
 *   <li>{@code cpu-tests}: every other test of this module.
 *   <li>{@code bench [args...]}: the decode benchmark ({@link DecodeBenchmark}), rows as they end
 *       and the table last.
 * </ul>
 *
 * <p>Exit status 1 when a test failed or a GPU test did not run.
 */
public final class DeviceCheck {
  private DeviceCheck() {}

  public static void main(String[] args) {
    String phase = args.length == 0 ? "gpu-tests" : args[0];
    String[] rest = args.length == 0 ? args : Arrays.copyOfRange(args, 1, args.length);
    CudaAvailability a = CudaAvailability.get();
    System.out.println("CUDA: " + (a.available() ? a.device() + ", " + a.multiprocessors() + " SMs"
        : "unavailable: " + a.reason()));
    switch (phase) {
      case "gpu-tests" -> System.exit(gpuTests(a) ? 0 : 1);
      case "cpu-tests" -> System.exit(cpuTests() ? 0 : 1);
      case "bench" -> {
        if (!a.available()) {
          System.out.println("benchmark not run: no CUDA device");
          System.exit(1);
        }
        DecodeBenchmark.main(rest);
        System.exit(0);
      }
      default -> {
        System.err.println("usage: DeviceCheck gpu-tests | cpu-tests | bench [benchmark args]");
        System.exit(2);
      }
    }
  }

  private static boolean gpuTests(CudaAvailability a) {
    LauncherDiscoveryRequest gpu = LauncherDiscoveryRequestBuilder.request()
        .selectors(selectClass(GpuAttentionTest.class)).build();
    Launcher launcher = LauncherFactory.create();
    long tests = launcher.discover(gpu).getRoots().stream()
        .mapToLong(r -> launcher.discover(gpu).getDescendants(r).stream()
            .filter(TestIdentifier::isTest).count()).sum();
    SummaryGeneratingListener summary = new SummaryGeneratingListener();
    launcher.execute(gpu, summary, new Progress());
    TestExecutionSummary s = summary.getSummary();
    s.printFailuresTo(new PrintWriter(System.out, true), 40);
    System.out.println("GPU tests: " + s.getTestsSucceededCount() + " of " + tests + " passed, "
        + s.getTestsFailedCount() + " failed, "
        + (s.getTestsSkippedCount() + s.getTestsAbortedCount()) + " skipped or aborted");
    return a.available() && tests > 0 && s.getTestsSucceededCount() == tests
        && s.getContainersFailedCount() == 0;
  }

  private static boolean cpuTests() {
    LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
        .selectors(selectPackage("org.retroinfer.gpu"))
        .filters(ClassNameFilter.excludeClassNamePatterns(".*GpuAttentionTest"))
        .build();
    SummaryGeneratingListener listener = new SummaryGeneratingListener();
    LauncherFactory.create().execute(request, listener);
    TestExecutionSummary s = listener.getSummary();
    s.printFailuresTo(new PrintWriter(System.out, true), 30);
    System.out.println("CPU-side tests: " + s.getTestsSucceededCount() + " passed, "
        + s.getTestsFailedCount() + " failed, "
        + (s.getTestsSkippedCount() + s.getTestsAbortedCount()) + " skipped or aborted");
    return s.getTestsFailedCount() == 0 && s.getContainersFailedCount() == 0;
  }

  /** One line per test as it ends, with its time: a hang shows which test it is in. */
  private static final class Progress implements TestExecutionListener {
    private long started;

    @Override
    public void testPlanExecutionStarted(TestPlan plan) {
      started = System.nanoTime();
    }

    @Override
    public void executionStarted(TestIdentifier id) {
      if (id.isTest()) {
        System.out.println("  start " + id.getDisplayName());
        started = System.nanoTime();
      }
    }

    @Override
    public void executionSkipped(TestIdentifier id, String reason) {
      System.out.println("  skipped " + id.getDisplayName() + ": " + reason);
    }

    @Override
    public void executionFinished(TestIdentifier id, TestExecutionResult result) {
      if (id.isTest()) {
        System.out.printf(java.util.Locale.ROOT, "  %s %s (%.1f s)%s%n", result.getStatus(),
            id.getDisplayName(), (System.nanoTime() - started) / 1e9,
            result.getThrowable().map(t -> ": " + t).orElse(""));
      }
    }
  }
}
