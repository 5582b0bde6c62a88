/** File writes that never leave a half-written file behind: write a temp file beside the target, then rename. */
import { writeFileSync, renameSync, mkdirSync, rmSync } from 'node:fs';
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
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
      throw new UserError(`cannot write ${path}: permission denied; choose a writable folder with --out`);
    }
    if (err.code === 'ENOSPC') throw new UserError(`cannot write ${path}: the disk is full; free space and run again (nothing was overwritten)`);
    if (err.code === 'ENOTDIR' || err.code === 'EEXIST') throw new UserError(`cannot write ${path}: a parent path is a file, not a folder; choose another --out`);
    throw e;
  }
}
