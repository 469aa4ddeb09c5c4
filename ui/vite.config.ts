// Vite build of the Control UI: ui/dist/index.html + ui/dist/assets/<name>-<hash>.{js,css},
// served by the gateway (host/src/gateway/ui-static.ts). JSX compiles for Preact's automatic
// runtime. No inline script or style is emitted (the gateway's CSP forbids them): the module
// preload polyfill is off (every browser the UI targets supports modulepreload).
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
