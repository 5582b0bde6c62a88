/** File writes that never leave a half-written file behind: write a temp file beside the target, then rename. */
import { writeFileSync, renameSync, mkdirSync, rmSync, appendFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { UserError } from './errors.ts';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw explainWriteError(path, e, '(nothing was overwritten)');
  }
}

/** Cleanup after a failed write must not hide why it failed (rmSync force still throws ENOTDIR, EACCES). */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // nothing was created there
  }
}

/**
 * Appends to a log the user keeps (history.jsonl). Not atomic: a line cut short by a full disk is the last one,
 * and readers skip it.
 */
export function appendFileChecked(path: string, text: string): void {
  try {
    appendFileSync(path, text);
  } catch (e) {
    throw explainWriteError(path, e, '(the lines written before are kept)');
  }
}

/** Turns what the user can fix (permissions, a full disk, a file where a folder should be) into a UserError. */
export function explainWriteError(path: string, e: unknown, kept: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
    return new UserError(`cannot write ${path}: permission denied; choose a writable folder with --out`, { cause: e });
  }
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return new UserError(`cannot write ${path}: the disk is full; free space and run again ${kept}`, { cause: e });
  if (err.code === 'EFBIG') return new UserError(`cannot write ${path}: the file size limit (ulimit -f) was reached; raise it and run again ${kept}`, { cause: e });
  if (err.code === 'ENOTDIR' || err.code === 'EEXIST') return new UserError(`cannot write ${path}: a parent path is a file, not a folder; choose another --out`, { cause: e });
  return e;
}
