/**
 * NumPy `.npz`: a zip archive of `.npy` members named `<array>.npy`, stored (np.savez) or deflated
 * (np.savez_compressed). numpy writes every member with zip64 extra fields; fflate reads those.
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../fs.ts';
import { encodeNpy, parseNpy, readUserFile, type NpyArray } from './npy.ts';

/** Parse `.npz` bytes into arrays by name (member name without `.npy`). */
export function parseNpz(bytes: Uint8Array, source: string): Map<string, NpyArray> {
  const name = basename(source);
  // Local file header signature "PK\x03\x04"; an empty archive starts with the end record "PK\x05\x06".
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
  if (!isZip) {
    throw new UserError(`${name} is not a .npz file (not a zip archive): save the arrays with np.savez('${name}', x=x)`);
  }
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes);
  } catch (e) {
    throw new UserError(`${name} is a damaged .npz (zip: ${(e as Error).message}); save it again with np.savez`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [member, data] of Object.entries(members)) {
    if (member.endsWith('/')) continue;
    const key = member.endsWith('.npy') ? member.slice(0, -4) : member;
    arrays.set(key, parseNpy(data, `${name}:${member}`));
  }
  return arrays;
}

export function readNpz(path: string): Map<string, NpyArray> {
  return parseNpz(readUserFile(path), path);
}

/** Encode arrays as `.npz`; `compress` deflates like np.savez_compressed. */
export function encodeNpz(arrays: Record<string, NpyArray>, options: { compress?: boolean } = {}): Uint8Array {
  const files: Zippable = {};
  for (const [key, array] of Object.entries(arrays)) files[`${key}.npy`] = encodeNpy(array);
  // A fixed mtime keeps the archive byte-identical across runs (fflate would stamp "now").
  return zipSync(files, { level: options.compress ? 6 : 0, mtime: new Date(1980, 0, 1) });
}

export function writeNpz(path: string, arrays: Record<string, NpyArray>, options: { compress?: boolean } = {}): void {
  writeFileAtomic(path, encodeNpz(arrays, options));
}
