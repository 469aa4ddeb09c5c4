import { createSurrealSessionLog } from "../../host/src/store/index.js";
import { sessionLogSuite } from "./session-log.suite.js";

sessionLogSuite("surreal mem://", (options) => createSurrealSessionLog({ url: "mem://", ...options }));
