import { describe, expect, it } from 'vitest';
import { checkDownloadUrl, classifyAddress, DownloadRefusedError, guardedLookup, parseAllowedHosts } from './download-guard.js';

describe('classifyAddress', () => {
  const cases: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4001:80b::200e', 'public'],
    // IPv6 forms that carry an IPv4 address are judged by it.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:c0a8:101::1', 'private'],
    ['::127.0.0.1', 'reserved'],
    ['4000::1', 'reserved'],
    ['not-an-ip', 'reserved'],
  ];
  it.each(cases)('%s is %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });
});

describe('checkDownloadUrl', () => {
  const allowed = parseAllowedHosts(['127.0.0.1:9000', 'reports.local', '[::1]:8443']);
  const refused = (url: string) => {
    try {
      checkDownloadUrl(new URL(url), allowed);
    } catch (err) {
      expect(err).toBeInstanceOf(DownloadRefusedError);
      return (err as Error).message;
    }
    throw new Error(`${url} was not refused`);
  };

  it('takes https to a public name', () => {
    expect(checkDownloadUrl(new URL('https://avara-reports.s3.amazonaws.com/r.pdf?X-Amz-Signature=abc'), allowed)).toEqual({ allowListed: false });
    expect(checkDownloadUrl(new URL('https://8.8.8.8/r.pdf'), allowed)).toEqual({ allowListed: false });
  });

  it('refuses http, other schemes and credentials unless the host is listed', () => {
    expect(refused('http://avara.example/r.pdf')).toMatch(/only https/);
    expect(refused('ftp://avara.example/r.pdf')).toMatch(/ftp/);
    expect(refused('file:///etc/passwd')).toMatch(/file/);
    expect(refused('https://user:pw@avara.example/r.pdf')).toMatch(/credentials/);
  });

  it('refuses loopback, private and link-local address literals, in any spelling', () => {
    expect(refused('https://127.0.0.1/r.pdf')).toMatch(/loopback/);
    expect(refused('https://127.1/r.pdf')).toMatch(/loopback/); // WHATWG URL normalises to 127.0.0.1
    expect(refused('https://2130706433/r.pdf')).toMatch(/loopback/);
    expect(refused('https://0x7f000001/r.pdf')).toMatch(/loopback/);
    expect(refused('https://10.0.0.5/r.pdf')).toMatch(/private/);
    expect(refused('https://169.254.169.254/latest/meta-data')).toMatch(/link-local/);
    expect(refused('https://[::1]/r.pdf')).toMatch(/loopback/);
    expect(refused('https://[::ffff:127.0.0.1]/r.pdf')).toMatch(/loopback/);
    expect(refused('https://[fe80::1]/r.pdf')).toMatch(/link-local/);
    expect(refused('https://127.0.0.1:9001/r.pdf')).toMatch(/loopback/); // listed with another port only
  });

  it('lets listed hosts use http and private addresses, matching the port when one is listed', () => {
    expect(checkDownloadUrl(new URL('http://127.0.0.1:9000/r.pdf'), allowed)).toEqual({ allowListed: true });
    expect(checkDownloadUrl(new URL('http://reports.local/r.pdf'), allowed)).toEqual({ allowListed: true });
    expect(checkDownloadUrl(new URL('https://reports.local:8443/r.pdf'), allowed)).toEqual({ allowListed: true });
    expect(checkDownloadUrl(new URL('http://[::1]:8443/r.pdf'), allowed)).toEqual({ allowListed: true });
  });

  it('never puts the path or query in a reason', () => {
    expect(refused('http://avara.example/secret/path.pdf?X-Amz-Signature=s3cr3t')).not.toMatch(/secret|s3cr3t/);
  });
});

describe('guardedLookup', () => {
  const lookup = (allowListed: boolean, host: string, all: boolean) =>
    new Promise<unknown>((resolve, reject) => {
      guardedLookup(allowListed)(host, { all }, (err, address, family) => (err ? reject(err) : resolve(all ? address : { address, family })));
    });

  it('refuses a name that resolves to a loopback address: the check is on the resolved address', async () => {
    await expect(lookup(false, 'localhost', false)).rejects.toThrow(/resolves to .* loopback/);
    await expect(lookup(false, 'localhost', true)).rejects.toBeInstanceOf(DownloadRefusedError);
  });

  it('passes the resolved addresses through for listed hosts, in both callback forms', async () => {
    const one = (await lookup(true, 'localhost', false)) as { address: string; family: number };
    expect(classifyAddress(one.address)).toBe('loopback');
    expect([4, 6]).toContain(one.family);
    const all = (await lookup(true, 'localhost', true)) as Array<{ address: string }>;
    expect(all.length).toBeGreaterThan(0);
  });

  it('passes resolver errors through', async () => {
    await expect(lookup(false, 'no-such-host.invalid', false)).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
