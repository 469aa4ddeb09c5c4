// The manifest section code lives in the host (host/src/plugins/manifest-section.mjs, plain JS so
// this build script runs it without a TypeScript step); scripts import the host, never the reverse.
export * from "../../host/src/plugins/manifest-section.mjs";
