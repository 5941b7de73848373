import { describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { LinkError, LinkSigner, type LinkClaims } from './link-signer.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const claims: LinkClaims = { p: 'instance', m: 'GET', st: '1.2.3', se: '1.2.3.4', so: '1.2.3.4.5' };
const now = 1_800_000_000;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof LinkError ? err.code : 'other';
  }
}

describe('signed links', () => {
  const signer = new LinkSigner([A]);
  const { token, expiresAt } = signer.sign(claims, 60, now);

  it('round-trips the claims and the expiry', () => {
    expect(expiresAt).toBe(now + 60);
    expect(signer.verify(token, { purpose: 'instance', method: 'GET' }, now)).toMatchObject({ ...claims, exp: now + 60 });
    expect(signer.verify(token, { purpose: 'instance', method: 'HEAD' }, now).so).toBe('1.2.3.4.5');
  });
  it('expires', () => {
    expect(code(() => signer.verify(token, { purpose: 'instance', method: 'GET' }, now + 60))).toBe('link_expired');
  });
  it('is bound to method and purpose', () => {
    expect(code(() => signer.verify(token, { purpose: 'instance', method: 'PUT' }, now))).toBe('link_wrong_method');
    expect(code(() => signer.verify(token, { purpose: 'upload', method: 'GET' }, now))).toBe('link_wrong_purpose');
  });
  it('refuses a tampered payload', () => {
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.so = '1.2.3.4.6';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expect(code(() => signer.verify(forged, { purpose: 'instance', method: 'GET' }, now))).toBe('link_invalid');
  });
  it('refuses a token signed with a foreign key, or with alg none', () => {
    const foreign = new LinkSigner([B]).sign(claims, 60, now).token;
    expect(code(() => signer.verify(foreign, { purpose: 'instance', method: 'GET' }, now))).toBe('link_invalid');
    const none = jwt.sign({ ...claims, exp: now + 60 }, '', { algorithm: 'none' });
    expect(code(() => signer.verify(`${none}x`, { purpose: 'instance', method: 'GET' }, now))).toBe('link_invalid');
  });
  it('refuses garbage', () => {
    expect(code(() => signer.verify('not-a-token', { purpose: 'instance', method: 'GET' }, now))).toBe('link_malformed');
  });
  it('verifies with every configured secret, signs with the first (rotation)', () => {
    const rotated = new LinkSigner([B, A]);
    expect(rotated.verify(token, { purpose: 'instance', method: 'GET' }, now).st).toBe('1.2.3');
    const fresh = rotated.sign(claims, 60, now).token;
    expect(code(() => signer.verify(fresh, { purpose: 'instance', method: 'GET' }, now))).toBe('link_invalid');
  });
});
