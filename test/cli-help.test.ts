/** Help is where a new user starts: every command shows worked examples, the top level lists every command in one line. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertUserError, trtmix } from './cli-helpers.ts';

const COMMANDS = ['search', 'replay', 'export', 'analyze', 'latency', 'profile', 'compare', 'info', 'worker'];

/** The lines of one `Section:` of yargs help, up to the next blank line. */
function section(help: string, name: string): string[] {
  const lines = help.split('\n');
  const start = lines.indexOf(`${name}:`);
  assert.notEqual(start, -1, `no ${name}: section in\n${help}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start + 1, end === -1 ? undefined : end);
}

describe('help', { concurrency: 2 }, () => {
  test('trtmix --help lists every command with a one-line description, and examples', async () => {
    const r = await trtmix(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const commands = section(r.stdout, 'Commands');
    for (const name of COMMANDS) {
      const line = commands.find((l) => new RegExp(`^  trtmix ${name}\\b`).test(l));
      assert.ok(line, `${name} is listed`);
      assert.match(line, /\S\s{2,}[A-Z][\w-]+ .{20,}/, `${name} has a description on its line`);
    }
    assert.equal(commands.length, COMMANDS.length, `one line per command, none wrapped:\n${commands.join('\n')}`);
    const examples = section(r.stdout, 'Examples');
    assert.ok(examples.some((l) => /^ {2}trtmix search\s{2,}Run the built-in/.test(l)));
    assert.ok(examples.some((l) => l.includes('trtmix search --model model.onnx --data')));
    assert.match(r.stdout, /Exit codes: 0 done, 1 failure, 2 bad usage or input/);
  });

  for (const name of COMMANDS) {
    test(`trtmix ${name} --help shows worked examples`, async () => {
      const r = await trtmix([name, '--help']);
      assert.equal(r.code, 0, r.stderr);
      const examples = section(r.stdout, 'Examples');
      assert.ok(examples.length >= 2, `at least one example:\n${r.stdout}`);
      assert.ok(examples.filter((l) => l.startsWith(`  trtmix ${name}`)).length >= 2, `examples start with the command:\n${examples.join('\n')}`);
      for (const global of ['--json', '--config', '--verbose', '--quiet']) assert.ok(r.stdout.includes(global), `${name} --help shows ${global}`);
    });
  }

  test('no command, an unknown command and an unknown option are bad usage (exit 2, one line)', async () => {
    assertUserError(await trtmix([]), /no command given; name one of: analyze, compare, export, info, latency, profile, replay, search, worker; trtmix --help shows the options/);
    assertUserError(await trtmix(['serach']), /unknown command "serach"; did you mean search\?; trtmix --help shows the options/);
    assertUserError(await trtmix(['latency', '--targte', 't4']), /Unknown arguments?: targte; trtmix latency --help shows the options/);
    assertUserError(await trtmix(['search', '--agent', 'ppo']), /Invalid values: Argument: agent, Given: "ppo", Choices: "dqn"/);
  });
});
