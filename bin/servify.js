#!/usr/bin/env node
// `servify` CLI entry: registers tsx's loader in this process and runs the TypeScript CLI, so
// signals (SIGTERM from a supervisor) reach the app's ordered shutdown directly.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
