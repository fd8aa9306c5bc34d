/**
 * Where the local stack keeps its state (cluster, logs, pid files) when QH_STATE_DIR is not set.
 *
 * The checkout's own `.stack/` folder, unless the checkout lies under a folder that other users
 * cannot enter (a clone in /root, mode 0700 on Debian): the cluster runs as the `postgres` OS
 * user when the stack runs as root, and PostgreSQL refuses a data folder it cannot reach. Then
 * the state goes to /var/tmp/queue-health/<checkout>-<hash of its path>/, one folder per
 * checkout, the same on every run. Reads none of the stack's settings (QH_*), so that entry points
 * can call it before those are imported.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isRoot } from './system.ts';

/** True when every folder from the root down to `dir` can be entered by any user (o+x). */
export function traversableByOthers(dir: string): boolean {
  let d = resolve(dir);
  for (;;) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      // Not created yet: what matters is the folders above it.
    }
    const up = dirname(d);
    if (up === d) return true;
    d = up;
  }
}

/**
 * The default state folder for the checkout at `root`: `<root>/<sub>` when the postgres OS user
 * can reach it (or when this does not run as root, so the cluster runs as the current user),
 * else a folder of this checkout's under /var/tmp/queue-health.
 */
export function defaultStateDir(root: string, sub = '.stack'): string {
  const preferred = join(root, sub);
  if (!isRoot() || traversableByOthers(root)) return preferred;
  const tag = createHash('sha256').update(resolve(root)).digest('hex').slice(0, 8);
  return join('/var/tmp/queue-health', `${basename(resolve(root)) || 'root'}-${tag}`, sub);
}
