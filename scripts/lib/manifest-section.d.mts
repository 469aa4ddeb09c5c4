// Types of the re-export in manifest-section.mjs (see host/src/plugins/manifest-section.d.mts).
export * from "../../host/src/plugins/manifest-section.mjs";
