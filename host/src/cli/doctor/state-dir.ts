import { constants } from "node:fs";
import { access, chmod, lstat, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { error, ok, warn, type Finding, type FixOptions } from "./types.js";

/** Sub-directories of the state directory that hold trust decisions or secrets: 0700, their files 0600. */
export const PRIVATE_SUBDIRS = ["trust", "credentials"] as const;

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Checks the state directory (`EXOCLAW_STATE_DIR`, default `~/.exoclaw`): it exists, is a
 * directory this user can write (a probe file is created and removed), and group and others
 * have no access to it, to `trust/` and `credentials/` or to the files in those (docs/security.md:
 * state files 0600, directories 0700). With `fix`, creates a missing directory (0700) and
 * tightens modes; it never changes ownership or deletes anything.
 */
export async function checkStateDir(dir: string, { fix }: FixOptions): Promise<Finding[]> {
  const check = "state-dir";
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") return [error(check, `cannot stat the state directory ${dir} (${code})`, `check the permissions of ${dir} and its parents`)];
    const f = warn(check, `the state directory ${dir} does not exist (the gateway creates it on first start)`, `mkdir -m 700 ${dir}`);
    if (fix) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      f.fixed = true;
    }
    return [f];
  }
  if (!st.isDirectory()) return [error(check, `the state directory ${dir} is not a directory`, `move ${dir} away, or set EXOCLAW_STATE_DIR to a directory`)];
  const findings: Finding[] = [];
  try {
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    const probe = join(dir, `.doctor-${process.pid}.tmp`);
    await writeFile(probe, "", { mode: 0o600 });
    await rm(probe, { force: true });
  } catch (err) {
    const uid = process.getuid?.() ?? "?";
    return [
      error(
        check,
        `the state directory ${dir} is not readable and writable by this user (uid ${uid}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        `chown -R $(id -un) ${dir} && chmod 700 ${dir}`,
      ),
    ];
  }
  findings.push(...(await tighten(check, dir, st.mode, 0o700, fix)));
  for (const sub of PRIVATE_SUBDIRS) {
    const path = join(dir, sub);
    let sst;
    try {
      sst = await lstat(path);
    } catch {
      continue;
    }
    if (!sst.isDirectory()) continue;
    findings.push(...(await tighten(check, path, sst.mode, 0o700, fix)));
    for (const name of await readdir(path).catch(() => [] as string[])) {
      const file = join(path, name);
      const fst = await lstat(file).catch(() => undefined);
      if (fst?.isFile()) findings.push(...(await tighten(check, file, fst.mode, 0o600, fix)));
    }
  }
  const toml = join(dir, "exoclaw.toml");
  const tst = await lstat(toml).catch(() => undefined);
  if (tst?.isFile()) findings.push(...(await tighten(check, toml, tst.mode, 0o600, fix)));
  if (!findings.some((f) => f.severity !== "ok")) findings.unshift(ok(check, `${dir} exists, is writable, mode ${octal(st.mode)}`));
  return findings;
}

/** A finding when group or others have any access to `path`; with `fix`, chmods it to `want`. */
async function tighten(check: string, path: string, mode: number, want: number, fix: boolean): Promise<Finding[]> {
  if ((mode & 0o077) === 0) return [];
  const f = warn(check, `${path} is mode ${octal(mode)}: group or others can read it`, `chmod ${want.toString(8)} ${path}`);
  if (fix) {
    await chmod(path, want);
    f.fixed = true;
  }
  return [f];
}
