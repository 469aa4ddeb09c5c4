/**
 * The native binding of `@surrealdb/node` is required straight from its platform binary
 * (surreal/engine.ts, `requirePlatformBinary`), so the engine's open need not wait for the
 * package's ES module to import and compile the SDK first (issue 13, ready time). The binary
 * must be the very module the package's own loader gets: one native module per process.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { loadNativeBinding, requirePlatformBinary } from "../../host/src/store/surreal/engine.js";

describe("the embedded engine's native binding", () => {
  // This machine (linux x64, glibc) is a platform the direct path knows.
  it.runIf(process.platform === "linux" && process.arch === "x64")("is required from the platform binary without importing the package", async () => {
    const direct = requirePlatformBinary();
    expect(typeof direct?.SurrealNodeEngine.connect).toBe("function");
    expect(await loadNativeBinding()).toBe(direct);
  });

  it("is the same module the package's own loader loads", async () => {
    const binding = await loadNativeBinding();
    await import("@surrealdb/node");
    const natives = Object.entries(createRequire(import.meta.url).cache).filter(
      ([file, mod]) => file.endsWith(".node") && typeof (mod?.exports as { SurrealNodeEngine?: unknown })?.SurrealNodeEngine === "function",
    );
    expect(natives).toHaveLength(1);
    expect(natives[0]![1]!.exports).toBe(binding);
  });
});
