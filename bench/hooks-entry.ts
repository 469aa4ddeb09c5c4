// What bench/hooks.mjs needs of the host, bundled together into dist/bench-hooks.mjs.
export { ApprovalStore, approvalFor, inspectPluginFile, loadPlugins, sha256Hex } from "../host/src/plugins/index.js";
export { createLifecycleHooks, gateToolDispatch } from "../host/src/agent/hooks/index.js";
