// Throwaway Postgres 15 (+ pgvector) and Redis for tests, CI and local development, without
// Docker (DESIGN §9: no Docker engine runs on these machines; CI starts with nothing running).
//
//   npx tsx scripts/services.ts ensure              install what is missing (redis-server, pgvector)
//   npx tsx scripts/services.ts start [--dir DIR]   start both; prints DATABASE_URL=, REDIS_URL=,
//                                                   SERVIFY_SERVICES_DIR= lines on stdout
//   npx tsx scripts/services.ts stop --dir DIR      stop both and delete DIR
//
// `startServices()` is the same thing as a function (used by scripts/test.ts).
//
// Installs (Debian, as root): redis-server from the machine's own apt sources; pgvector is not
// packaged for bookworm, so it is built from Debian trixie's source package (a `deb-src` line in a
// separate sources file, built against PostgreSQL 15's pg_config). Every step is skipped when its
// result is already present, so a second run costs only a few `stat`s.
//
// Only node builtins are used so that this runs before anything else is set up.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync, appendFileSync, mkdirSync, chmodSync, chownSync, rmSync, mkdtempSync, statSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, basename } from "node:path";
import { fileURLToPath } from "node:url";

const PG_MAJOR = process.env.SERVIFY_PG_MAJOR ?? "15";
const PG_BIN = process.env.SERVIFY_PG_BIN ?? `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const PG_CONFIG = join(PG_BIN, "pg_config");
const PG_USER = "postgres";
const DB_NAME = "servify";
const STATE_FILE = "services.json";
const TRIXIE_SOURCES = "/etc/apt/sources.list.d/servify-trixie-src.sources";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function log(msg: string): void {
  process.stderr.write(`[services] ${msg}\n`);
}

// ---------------------------------------------------------------- process helpers

interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as the postgres user when we are root (initdb and pg_ctl refuse root). */
  asPostgres?: boolean;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFail?: boolean;
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs a command with output captured (quiet); on failure the captured output is in the error. */
function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  let file = cmd;
  let argv = args;
  if (opts.asPostgres && isRoot) {
    file = "runuser";
    argv = ["-u", PG_USER, "--", cmd, ...args];
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    child.on("error", (err) => reject(new Error(`${file} could not be started: ${err.message}`)));
    child.on("close", (code, signal) => {
      const output = Buffer.concat(chunks).toString("utf8");
      const result = { code: code ?? (signal ? 128 : 1), output };
      if (result.code !== 0 && !opts.allowFail) {
        const tail = output.trim().split("\n").slice(-40).join("\n");
        reject(new Error(`\`${[file, ...argv].join(" ")}\` failed (exit ${result.code}):\n${tail}`));
      } else {
        resolvePromise(result);
      }
    });
  });
}

function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function requireRoot(what: string): void {
  if (!isRoot) throw new Error(`${what} is missing and installing it needs root (apt-get); install it and retry`);
}

// ---------------------------------------------------------------- apt

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_MODE: "a" };
let aptUpdated = false;

async function aptUpdate(): Promise<void> {
  log("apt-get update");
  await run("apt-get", ["-q", "update"], { env: APT_ENV });
  aptUpdated = true;
}

/** Installs packages; refreshes the package lists once if the first attempt fails (fresh machine). */
async function aptInstall(pkgs: string[]): Promise<void> {
  const args = ["-q", "-y", "--no-install-recommends", "install", ...pkgs];
  log(`apt-get install ${pkgs.join(" ")}`);
  const first = await run("apt-get", args, { env: APT_ENV, allowFail: true });
  if (first.code === 0) return;
  if (aptUpdated) throw new Error(`apt-get install ${pkgs.join(" ")} failed:\n${first.output.trim().split("\n").slice(-20).join("\n")}`);
  await aptUpdate();
  await run("apt-get", args, { env: APT_ENV });
}

async function dpkgVersion(pkg: string): Promise<string | undefined> {
  const r = await run("dpkg-query", ["-W", "-f=${Status}|${Version}", pkg], { allowFail: true });
  if (r.code !== 0) return undefined;
  const [status, version] = r.output.trim().split("|");
  return status?.endsWith(" installed") ? version : undefined;
}

/** The Debian mirror this machine already uses (e.g. http://deb.debian.org/debian). */
function debianMirror(): string {
  const files: string[] = [];
  if (existsSync("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      if ((f.endsWith(".sources") || f.endsWith(".list")) && join(dir, f) !== TRIXIE_SOURCES) files.push(join(dir, f));
    }
  }
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    // deb822: "URIs: http://host/debian"; one-line: "deb [opts] http://host/debian bookworm main".
    const uris = [
      ...[...text.matchAll(/^\s*URIs:\s*(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)),
      ...[...text.matchAll(/^\s*deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)].map((m) => m[1]!),
    ];
    const hit = uris.find((u) => /^https?:\/\/[^/]+\/debian\/?$/.test(u));
    if (hit) return hit.replace(/\/$/, "");
  }
  return "http://deb.debian.org/debian";
}

// ---------------------------------------------------------------- ensure

async function pgConfig(flag: string): Promise<string> {
  return (await run(PG_CONFIG, [flag])).output.trim();
}

async function ensurePostgres(): Promise<void> {
  if (existsSync(join(PG_BIN, "initdb")) && existsSync(PG_CONFIG)) return;
  requireRoot(`PostgreSQL ${PG_MAJOR}`);
  await aptInstall([`postgresql-${PG_MAJOR}`]);
}

async function ensureRedis(): Promise<void> {
  if (which("redis-server")) return;
  requireRoot("redis-server");
  // The image's policy-rc.d (or the absence of an init system) keeps the packaged service from
  // starting; we start our own instance anyway.
  await aptInstall(["redis-server"]);
}

async function ensurePgvector(): Promise<void> {
  const sharedir = await pgConfig("--sharedir");
  const pkglibdir = await pgConfig("--pkglibdir");
  if (existsSync(join(sharedir, "extension", "vector.control")) && existsSync(join(pkglibdir, "vector.so"))) return;
  requireRoot("pgvector");
  const started = Date.now();
  log("pgvector is missing: building it from Debian trixie's source package");

  // Build dependencies: the server headers (pinned to the installed server's version when the
  // archive still has it, so installing headers does not upgrade the server) and a compiler.
  const includedir = await pgConfig("--includedir-server");
  if (!existsSync(join(includedir, "postgres.h"))) {
    const serverVersion = await dpkgVersion(`postgresql-${PG_MAJOR}`);
    const dev = `postgresql-server-dev-${PG_MAJOR}`;
    try {
      await aptInstall([serverVersion ? `${dev}=${serverVersion}` : dev]);
    } catch (err) {
      if (!serverVersion) throw err;
      log(`${dev}=${serverVersion} is not available; installing the newest ${dev}`);
      await aptInstall([dev]);
    }
  }
  if (!which("make") || !which("gcc")) await aptInstall(["build-essential"]);

  // Source only from trixie, in our own sources file: the system's lists stay untouched and no
  // trixie binary package can ever be installed from it.
  const mirror = debianMirror();
  const sources = [
    "# Added by servify scripts/services.ts: source packages only (pgvector is not in bookworm).",
    "Types: deb-src",
    `URIs: ${mirror}`,
    "Suites: trixie",
    "Components: main",
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
    "",
  ].join("\n");
  if (!existsSync(TRIXIE_SOURCES) || readFileSync(TRIXIE_SOURCES, "utf8") !== sources) {
    log(`adding ${TRIXIE_SOURCES} (deb-src trixie from ${mirror})`);
    writeFileSync(TRIXIE_SOURCES, sources);
  }
  // Refresh only that one source (fast; the other lists are left as they are).
  log("apt-get update (trixie sources only)");
  await run(
    "apt-get",
    ["-q", "update", "-o", `Dir::Etc::sourcelist=${TRIXIE_SOURCES}`, "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"],
    { env: APT_ENV },
  );

  const work = mkdtempSync(join(tmpdir(), "servify-pgvector-"));
  try {
    // apt runs downloads as the `_apt` user when it can; let it write here.
    chmodSync(work, 0o777);
    log("apt-get source --download-only pgvector");
    await run("apt-get", ["-q", "source", "--download-only", "pgvector"], { cwd: work, env: APT_ENV });
    const orig = readdirSync(work).find((f) => /^pgvector_.*\.orig\.tar\.(gz|xz|bz2)$/.test(f));
    if (!orig) throw new Error(`no pgvector .orig tarball downloaded (got: ${readdirSync(work).join(", ")})`);
    log(`building ${orig}`);
    await run("tar", ["-xf", orig], { cwd: work });
    const srcDir = readdirSync(work)
      .map((f) => join(work, f))
      .find((p) => statSync(p).isDirectory() && existsSync(join(p, "vector.control")));
    if (!srcDir) throw new Error("unpacked pgvector source has no vector.control");
    // OPTFLAGS="" : no -march=native, so the build runs on any CPU of the same architecture.
    await run("make", ["-j2", `PG_CONFIG=${PG_CONFIG}`, "OPTFLAGS="], { cwd: srcDir });
    await run("make", ["install", `PG_CONFIG=${PG_CONFIG}`, "OPTFLAGS="], { cwd: srcDir });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  log(`pgvector installed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

/** Installs whatever is missing (idempotent; a few stats when everything is there). */
export async function ensureServices(): Promise<void> {
  await ensurePostgres();
  await ensureRedis();
  await ensurePgvector();
}

// ---------------------------------------------------------------- start / stop

interface State {
  version: 1;
  dir: string;
  pgData: string;
  pgPort: number;
  redisPort: number;
  redisPidFile: string;
  databaseUrl: string;
  redisUrl: string;
  startedAt: string;
}

export interface Services {
  databaseUrl: string;
  redisUrl: string;
  /** Directory holding the cluster, logs and the state file; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

/** Free TCP ports on 127.0.0.1 (all held open together so they are distinct). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((res, rej) => {
          const s = createServer();
          s.once("error", rej);
          s.listen(0, "127.0.0.1", () => res(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (!a || typeof a === "string") throw new Error("no port");
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A daemon's parent is init; a zombie that init has not reaped yet counts as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").split("\n")[0]!.trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function readState(dir: string): State | undefined {
  const f = join(dir, STATE_FILE);
  if (!existsSync(f)) return undefined;
  return JSON.parse(readFileSync(f, "utf8")) as State;
}

async function isRunning(state: State): Promise<boolean> {
  const pgPid = readPid(join(state.pgData, "postmaster.pid"));
  return pgPid !== undefined && pidAlive(pgPid) && (await redisPing(state.redisPort));
}

function servicesOf(state: State): Services {
  return { databaseUrl: state.databaseUrl, redisUrl: state.redisUrl, dir: state.dir, stop: () => stopServices(state.dir) };
}

/**
 * Starts a throwaway PostgreSQL cluster (with pgvector) and a Redis server on free ports of
 * 127.0.0.1, daemonized so they outlive this process. With `dir`, reuses services already
 * running from that directory.
 */
export async function startServices(opts: { dir?: string } = {}): Promise<Services> {
  await ensureServices();
  const started = Date.now();

  let dir: string;
  if (opts.dir) {
    dir = resolve(opts.dir);
    const previous = readState(dir);
    if (previous) {
      if (await isRunning(previous)) {
        log(`services already running from ${dir}`);
        return servicesOf(previous);
      }
      log(`stale services in ${dir}: cleaning up`);
      await stopServices(dir, { keepDir: true });
    }
    mkdirSync(dir, { recursive: true });
    if (readdirSync(dir).length > 0) throw new Error(`${dir} is not empty; refusing to use it`);
  } else {
    dir = mkdtempSync(join(tmpdir(), "servify-services-"));
  }

  const pgData = join(dir, "pg");
  const redisDir = join(dir, "redis");
  const [pgPort, redisPort] = (await freePorts(2)) as [number, number];
  const state: State = {
    version: 1,
    dir,
    pgData,
    pgPort,
    redisPort,
    redisPidFile: join(redisDir, "redis.pid"),
    databaseUrl: `postgresql://postgres@127.0.0.1:${pgPort}/${DB_NAME}`,
    redisUrl: `redis://127.0.0.1:${redisPort}/0`,
    startedAt: new Date().toISOString(),
  };
  // Written first so that `stop --dir` can clean up even after a half-finished start.
  writeFileSync(join(dir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");

  try {
    // ---- PostgreSQL: the postgres user owns the cluster directory (initdb refuses root).
    mkdirSync(pgData, { mode: 0o700 });
    if (isRoot) {
      const { uid, gid } = await postgresIds();
      chmodSync(dir, 0o755);
      chownSync(pgData, uid, gid);
      const check = await run("test", ["-w", pgData], { asPostgres: true, allowFail: true });
      if (check.code !== 0) throw new Error(`the ${PG_USER} user cannot reach ${pgData}; choose a --dir under a world-traversable directory (e.g. /tmp)`);
    }
    await run(join(PG_BIN, "initdb"), ["-D", pgData, "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], {
      asPostgres: true,
    });
    // Throwaway cluster: durability off for speed; TCP on 127.0.0.1 only (no Unix socket, so
    // nothing clashes with a system cluster); trust auth is safe because nothing else listens.
    appendFileSync(
      join(pgData, "postgresql.conf"),
      [
        "",
        "# servify scripts/services.ts: throwaway test cluster",
        `port = ${pgPort}`,
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        "max_connections = 300",
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "wal_level = minimal",
        "max_wal_senders = 0",
        "logging_collector = off",
        "",
      ].join("\n"),
    );
    await run(join(PG_BIN, "pg_ctl"), ["-D", pgData, "-l", join(pgData, "postgres.log"), "-w", "-t", "60", "-s", "start"], {
      asPostgres: true,
    });
    await run(join(PG_BIN, "createdb"), ["-h", "127.0.0.1", "-p", String(pgPort), "-U", PG_USER, DB_NAME]);

    // ---- Redis: no persistence, loopback only, daemonized.
    mkdirSync(redisDir);
    const redisServer = which("redis-server");
    if (!redisServer) throw new Error("redis-server not found");
    await run(redisServer, [
      "--port", String(redisPort),
      "--bind", "127.0.0.1",
      "--protected-mode", "yes",
      "--save", "",
      "--appendonly", "no",
      "--daemonize", "yes",
      "--dir", redisDir,
      "--pidfile", state.redisPidFile,
      "--logfile", join(redisDir, "redis.log"),
    ]);
    const deadline = Date.now() + 15_000;
    while (!(await redisPing(redisPort))) {
      if (Date.now() > deadline) throw new Error(`redis did not answer on port ${redisPort} (see ${join(redisDir, "redis.log")})`);
      await sleep(50);
    }
  } catch (err) {
    await stopServices(dir).catch(() => undefined);
    throw err;
  }
  log(`started postgres :${pgPort} and redis :${redisPort} in ${((Date.now() - started) / 1000).toFixed(1)}s (${dir})`);
  return servicesOf(state);
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run("id", ["-u", PG_USER])).output.trim());
  const gid = Number((await run("id", ["-g", PG_USER])).output.trim());
  return { uid, gid };
}

/** Stops what `startServices` started in `dir` and deletes `dir` (unless keepDir). */
export async function stopServices(dir: string, opts: { keepDir?: boolean } = {}): Promise<void> {
  dir = resolve(dir);
  const state = readState(dir);
  if (!state) throw new Error(`${join(dir, STATE_FILE)} not found: nothing started there by scripts/services.ts`);
  const started = Date.now();

  // Nothing is persisted by either server, so neither needs a clean shutdown: Redis gets SIGKILL
  // (after SIGTERM it lingers ~1.5 s in its exit path) and Postgres an immediate stop.
  const redisPid = readPid(state.redisPidFile);
  if (redisPid && pidAlive(redisPid)) process.kill(redisPid, "SIGKILL");
  if (existsSync(join(state.pgData, "postmaster.pid"))) {
    await run(join(PG_BIN, "pg_ctl"), ["-D", state.pgData, "-m", "immediate", "-w", "-s", "stop"], { asPostgres: true, allowFail: true });
  }
  const deadline = Date.now() + 5_000;
  while (redisPid && pidAlive(redisPid) && Date.now() < deadline) await sleep(10);

  if (opts.keepDir) {
    for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
  } else {
    rmSync(dir, { recursive: true, force: true });
  }
  log(`stopped services of ${basename(dir)} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

// ---------------------------------------------------------------- CLI

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let dir: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--dir") dir = rest[++i];
    else if (rest[i]!.startsWith("--dir=")) dir = rest[i]!.slice("--dir=".length);
    else throw new Error(`unknown argument: ${rest[i]}`);
  }
  switch (cmd) {
    case "ensure":
      await ensureServices();
      return 0;
    case "start": {
      const s = await startServices({ dir });
      process.stdout.write(`DATABASE_URL=${s.databaseUrl}\nREDIS_URL=${s.redisUrl}\nSERVIFY_SERVICES_DIR=${s.dir}\n`);
      return 0;
    }
    case "stop":
      if (!dir) throw new Error("stop needs --dir DIR (printed as SERVIFY_SERVICES_DIR by start)");
      await stopServices(dir);
      return 0;
    default:
      process.stderr.write("usage: tsx scripts/services.ts ensure | start [--dir DIR] | stop --dir DIR\n");
      return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      log(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
