// Preloaded into a gateway process (`node --import <this file>`): reports every module specifier
// the process resolves that names an OpenTelemetry package, one stderr line each
// (`module-trace: <specifier>`), so a test can tell whether the OpenTelemetry SDK was ever loaded.
import { register } from "node:module";

const hook = `
export async function resolve(specifier, context, next) {
  if (specifier.includes("@opentelemetry/")) process.stderr.write("module-trace: " + specifier + "\\n");
  return next(specifier, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
