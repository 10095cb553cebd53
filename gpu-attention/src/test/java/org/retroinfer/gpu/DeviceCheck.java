package org.retroinfer.gpu;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;
import org.retroinfer.gpu.bench.DecodeBenchmark;
import org.retroinfer.gpu.cuda.CudaAvailability;

/**
 * The device check, run on the GPU machine where there is no Maven: every test of this module
 * (the GPU tests included; they fail rather than skip here, since a GPU is required), then the
 * decode benchmark, whose table is printed last. Exit status 1 when a test failed or was skipped.
 *
 * <p>Usage: {@code DeviceCheck [benchmark args...]} (see {@link DecodeBenchmark}).
 */
public final class DeviceCheck {
  private DeviceCheck() {}

  public static void main(String[] args) {
    CudaAvailability a = CudaAvailability.get();
    System.out.println("CUDA: " + (a.available() ? a.device() + ", " + a.multiprocessors() + " SMs"
        : "unavailable: " + a.reason()));
    LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
        .selectors(selectPackage("org.retroinfer.gpu"))
        .filters(org.junit.platform.engine.discovery.ClassNameFilter.excludeClassNamePatterns(
            ".*GpuAttentionTest"))
        .build();
    Launcher launcher = LauncherFactory.create();
    SummaryGeneratingListener listener = new SummaryGeneratingListener();
    launcher.execute(request, listener);
    TestExecutionSummary s = listener.getSummary();
    s.printFailuresTo(new PrintWriter(System.out, true), 30);
    long skipped = s.getTestsSkippedCount() + s.getTestsAbortedCount()
        + s.getContainersAbortedCount();
    System.out.println("CPU-side tests: " + s.getTestsSucceededCount() + " passed, "
        + s.getTestsFailedCount() + " failed, " + skipped + " skipped or aborted");
    // the GPU tests must have run, not been skipped (the PTX freshness check may skip: no nvcc there)
    LauncherDiscoveryRequest gpu = LauncherDiscoveryRequestBuilder.request()
        .selectors(org.junit.platform.engine.discovery.DiscoverySelectors.selectClass(
            GpuAttentionTest.class)).build();
    long gpuTests = launcher.discover(gpu).getRoots().stream()
        .mapToLong(r -> launcher.discover(gpu).getDescendants(r).stream()
            .filter(org.junit.platform.launcher.TestIdentifier::isTest).count()).sum();
    SummaryGeneratingListener gpuRun = new SummaryGeneratingListener();
    launcher.execute(gpu, gpuRun);
    gpuRun.getSummary().printFailuresTo(new PrintWriter(System.out, true), 30);
    long gpuPassed = gpuRun.getSummary().getTestsSucceededCount();
    long gpuFailed = gpuRun.getSummary().getTestsFailedCount();
    System.out.println("GPU tests: " + gpuPassed + " of " + gpuTests + " passed, " + gpuFailed
        + " failed");
    System.out.println((s.getTestsSucceededCount() + gpuPassed) + " passed, "
        + (s.getTestsFailedCount() + gpuFailed) + " failed");
    boolean ok = s.getTestsFailedCount() == 0 && s.getContainersFailedCount() == 0
        && a.available() && gpuTests > 0 && gpuPassed == gpuTests;
    if (a.available() && !Boolean.getBoolean("retroinfer.skipBenchmark")) {
      DecodeBenchmark.main(args);
    }
    System.exit(ok ? 0 : 1);
  }
}
