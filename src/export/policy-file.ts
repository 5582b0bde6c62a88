/**
 * Reading a saved policy.json for the commands that consume one (export, replay), and checking that a model is
 * the one the policy was searched on (layer names and amax only mean something for that model).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { PRECISIONS, type PolicyFile, type Precision } from '../policy.ts';

function fail(path: string, what: string): never {
  throw new UserError(`${path} is not a trtmix policy (${what}); pass the policy.json a trtmix search wrote`);
}

export function readPolicyFile(path: string): PolicyFile {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UserError(`policy file ${path} does not exist; pass the policy.json from a search's output folder`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(path, `invalid JSON: ${(e as Error).message}`);
  }
  const p = doc as Partial<PolicyFile> | null;
  if (!p || typeof p !== 'object') fail(path, 'not a JSON object');
  if (p.version !== 1) fail(path, `version ${String(p.version)}, expected 1`);
  if (!p.model || typeof p.model.sha256 !== 'string' || typeof p.model.path !== 'string') fail(path, 'no model.path / model.sha256');
  if (!Array.isArray(p.layers)) fail(path, 'no layers array');
  for (const l of p.layers) {
    if (!l || typeof l.name !== 'string') fail(path, 'a layer without a name');
    if (!PRECISIONS.includes(l.precision as Precision)) fail(path, `layer ${l.name} has precision ${String(l.precision)}; expected one of ${PRECISIONS.join(', ')}`);
  }
  const amax = p.calibration?.amax;
  if (!amax || typeof amax !== 'object') fail(path, 'no calibration.amax');
  for (const [tensor, v] of Object.entries(amax)) if (typeof v !== 'number') fail(path, `amax of ${tensor} is not a number`);
  const bias = p.biasCorrection;
  if (bias !== undefined) {
    if (!bias || typeof bias !== 'object' || !bias.layers || typeof bias.layers !== 'object') fail(path, 'biasCorrection without a layers object');
    for (const [layer, d] of Object.entries(bias.layers)) {
      if (!Array.isArray(d) || d.some((v) => typeof v !== 'number' || !Number.isFinite(v))) fail(path, `biasCorrection.layers.${layer} is not an array of numbers`);
    }
  }
  return p as PolicyFile;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The sha256 of the model file; a UserError when it is not the policy's model, unless forced. */
export function checkPolicyModel(policy: PolicyFile, modelPath: string, force = false): { sha256: string; matches: boolean } {
  const sha256 = sha256Hex(readFileSync(modelPath));
  const matches = sha256 === policy.model.sha256;
  if (!matches && !force) {
    throw new UserError(
      `${modelPath} (sha256 ${sha256.slice(0, 12)}) is not the model the policy was searched on (${policy.model.path}, sha256 ${policy.model.sha256.slice(0, 12)}); pass that model, or --force to use this one anyway`,
    );
  }
  return { sha256, matches };
}

/**
 * policy.json's text: indented JSON with every array of numbers on one line (per-channel bias deltas, sample indices,
 * intervals), so that a file with bias corrections stays readable.
 */
export function policyJson(policy: unknown): string {
  return `${JSON.stringify(policy, null, 2).replace(/(?<=": |\n\s*)\[\s*((?:-?\d[\d.eE+-]*,\s*)*-?\d[\d.eE+-]*)\s*\]/g, (_, inner: string) => `[${inner.replace(/,\s+/g, ', ')}]`)}\n`;
}
