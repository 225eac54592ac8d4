// What the HTTP layer is built from: the process runtime (src/runtime.ts). buildApp(deps) never
// creates connections itself, so tests and the CLI decide what is real (DESIGN §6).
export type { Runtime as AppDeps } from "../runtime.js";
