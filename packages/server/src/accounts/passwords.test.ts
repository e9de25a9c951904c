import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hash } from '@node-rs/argon2';
import {
  ARGON2_PARAMS,
  checkPasswordPolicy,
  checkPasswordPolicyHere,
  hashPassword,
  judgePasswordsOffThread,
  MAX_PASSWORD_LENGTH,
  MIN_LENGTH,
  needsRehash,
  PasswordRejectedError,
  stopJudgingOffThread,
  verifyPassword,
} from './passwords.js';

type Judged = 'this thread' | 'a worker thread';

/** The reason the policy gives for refusing a password, or null when it is accepted; judged where `judged` says. */
async function refusalIn(judged: Judged, password: string, kind: 'operator' | 'consumer', context: string[] = []): Promise<string | null> {
  try {
    if (judged === 'this thread') checkPasswordPolicyHere(password, kind, context);
    else await checkPasswordPolicy(password, kind, context);
    return null;
  } catch (error) {
    assert.ok(error instanceof PasswordRejectedError);
    assert.equal(error.code, 'auth.password_rejected');
    return (error.details as { reason: string }).reason;
  }
}

/** Fixed random text (base64 of random bytes): the estimator finds nothing to shortcut in it. */
const RANDOM =
  'kW3p+Zr9Q0xT7bVn2LmA8sJdF1gH5yC4eR6uI0oP9aS3dG7fK2jL8zX1cV5bN4mQ/Tq8vHw6Ye0Ru2Ia4Ob9Sd7Fg5Jh3Kl1Zx8Cv6Bn4Mm2Qe0Wr9Ty7Uu5Ii3Oo1Pp8Aa6Ss4Dd2Ff0Gg9Hh7Jj5Kk3Ll1Zz8Xx6Cc4Vv2Bb0Nn9Mm7Qq5Ww3Ee1Rr8Tt6Yy4Uu2Ii0Oo9Pp7Aa5Ss3Dd1Ff8Gg6Hh4Jj2Kk0Ll9Zz7Xx5Cc3Vv1Bb8Nn6Mm4Qq2Ww0Ee9Rr7Tt5Yy3';

const unguessable = (length: number): string => RANDOM.repeat(Math.ceil(length / RANDOM.length)).slice(0, length);

for (const judged of ['this thread', 'a worker thread'] as const) {
  describe(`password policy, judged in ${judged}`, () => {
    const refusal = (password: string, kind: 'operator' | 'consumer', context: string[] = []) => refusalIn(judged, password, kind, context);
    if (judged === 'a worker thread') {
      before(() => judgePasswordsOffThread());
      after(() => stopJudgingOffThread());
    }

    it('refuses passwords shorter than the minimum of each kind of account', async () => {
      assert.equal(await refusal(unguessable(MIN_LENGTH.operator - 1), 'operator'), 'too_short');
      assert.equal(await refusal(unguessable(MIN_LENGTH.consumer - 1), 'consumer'), 'too_short');
      assert.equal(await refusal('', 'consumer'), 'too_short');
      assert.equal(await refusal(unguessable(MIN_LENGTH.operator), 'operator'), null);
      assert.equal(await refusal('Zq8#Lw2!Xv9$', 'consumer'), null);
      // Length counts characters, not UTF-16 units: eleven emoji are eleven characters.
      assert.equal(await refusal('🔒🦊🌋🎻🧲🪐🍄🛶🧿🦉🪁', 'operator'), 'too_short');
    });

    it('estimates even the longest passwords in bounded time (no CPU denial of service through the strength check)', async () => {
      await refusal('warm up the estimator once', 'consumer');
      for (const password of [
        unguessable(MAX_PASSWORD_LENGTH),
        '4@8(3&6#1!0$7+2%'.repeat(16),
        '1234567890'.repeat(26).slice(0, MAX_PASSWORD_LENGTH),
      ]) {
        // CPU time of this (synchronous) check, so a busy machine does not fail the test. The process
        // figure includes GC and other threads, which a loaded machine inflates; the regression this
        // guards against (zxcvbn's l33t matching) cost several seconds.
        const started = process.cpuUsage();
        await refusal(password, 'operator');
        const { user, system } = process.cpuUsage(started);
        const ms = (user + system) / 1000;
        assert.ok(ms < 1000, `${ms.toFixed(0)} ms of CPU for ${password.slice(0, 16)}…`);
      }
    });

    it('refuses passwords longer than 256 characters and accepts 256', async () => {
      assert.equal(MAX_PASSWORD_LENGTH, 256);
      assert.equal(await refusal(unguessable(257), 'operator'), 'too_long');
      assert.equal(await refusal(unguessable(10_000), 'consumer'), 'too_long');
      assert.equal(await refusal(unguessable(256), 'operator'), null);
    });

    it('refuses breached passwords, whatever their case', async () => {
      assert.equal(await refusal('password1234', 'operator'), 'breached');
      assert.equal(await refusal('PassWord1234', 'operator'), 'breached');
      assert.equal(await refusal('1qaz2wsx3edc', 'operator'), 'breached');
      assert.equal(await refusal('baseball', 'consumer'), 'breached');
      assert.notEqual(await refusal('password123456', 'operator'), null);
    });

    it("refuses passwords made of the user's own name or email, which are fine for someone else", async () => {
      const context = ['quorblax.zyxwvut@example.com', 'Zyxwvut Quorblax'];
      assert.equal(await refusal('quorblaxzyxwvut', 'operator'), null);
      assert.equal(await refusal('quorblaxzyxwvut', 'operator', context), 'guessable');
      assert.equal(await refusal('zyxwvutquorblax', 'consumer', context), 'guessable');
    });

    it('refuses keyboard walks and repeats, and accepts a long passphrase without composition rules', async () => {
      assert.equal(await refusal('qwertyuiopasdf', 'operator'), 'guessable');
      assert.equal(await refusal('aaaaaaaaaaaaaaaa', 'operator'), 'guessable');
      assert.equal(await refusal('violet tractor umbrella sings at dawn', 'operator'), null);
      assert.equal(await refusal('all lower case and no digits whatsoever', 'operator'), null);
    });
  });
}

describe('password hashing', () => {
  it('hashes with argon2id at the configured parameters, salted, and verifies only the right password', async () => {
    const [a, b] = [await hashPassword('a long enough secret'), await hashPassword('a long enough secret')];
    assert.match(
      a,
      new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}\\$`),
    );
    assert.notEqual(a, b, 'each hash has its own salt');
    assert.equal(await verifyPassword(a, 'a long enough secret'), true);
    assert.equal(await verifyPassword(a, 'a long enough secreT'), false);
    assert.equal(await verifyPassword('not a hash at all', 'anything'), false);
  });

  it('asks for a rehash of anything not made with the current argon2id parameters', async () => {
    const password = 'rehash me please 12';
    assert.equal(needsRehash(await hashPassword(password)), false);
    for (const other of [{ memoryCost: 4096 }, { timeCost: 3 }, { parallelism: 2 }, { algorithm: 1 as const }, { algorithm: 0 as const }]) {
      assert.equal(needsRehash(await hash(password, { ...ARGON2_PARAMS, ...other })), true, JSON.stringify(other));
    }
    assert.equal(needsRehash('$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0'), true, 'bcrypt');
    assert.equal(needsRehash(''), true);
  });
});
