import { createMemorySessionLog } from "../../host/src/store/index.js";
import { sessionLogSuite } from "./session-log.suite.js";

sessionLogSuite("memory", async (options) => createMemorySessionLog(options));
