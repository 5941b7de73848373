import { describe, expect, it } from 'vitest';
import type { InstanceRef, PacsClient } from '../pacs/pacs-client.js';
import { InstanceLister } from './instance-lister.js';

/** A strict fake: counts listings and lets the test decide when each one finishes. */
function fakePacs() {
  const calls: string[] = [];
  const pending: Array<(refs: InstanceRef[]) => void> = [];
  const pacs: PacsClient = {
    flavor: 'dicomweb',
    ping: async () => {},
    findStudy: async () => undefined,
    openInstance: async () => {
      throw new Error('not used');
    },
    listInstances: (studyUid) => {
      calls.push(studyUid);
      return new Promise((resolve) => pending.push(resolve));
    },
  };
  return { pacs, calls, finish: (refs: InstanceRef[]) => pending.shift()!(refs) };
}
const ref = (sop: string): InstanceRef => ({ studyUid: '1.2', seriesUid: '1.2.3', sopUid: sop });

describe('InstanceLister', () => {
  it('shares one PACS lookup between concurrent requests for a study', async () => {
    const f = fakePacs();
    const lister = new InstanceLister(f.pacs, 0);
    const a = lister.list('1.2', 1000);
    const b = lister.list('1.2', 1000);
    const c = lister.list('1.3', 1000);
    expect(f.calls).toEqual(['1.2', '1.3']);
    f.finish([ref('1')]);
    f.finish([ref('9')]);
    expect(await a).toEqual([ref('1')]);
    expect(await b).toBe(await a);
    expect((await c)[0]!.sopUid).toBe('9');
    lister.list('1.2', 1000);
    expect(f.calls).toHaveLength(3); // no cache configured: a later request asks again
    lister.close();
  });

  it('reuses a listing within the cache window until the study changes', async () => {
    const f = fakePacs();
    const lister = new InstanceLister(f.pacs, 30);
    const first = lister.list('1.2', 1000);
    f.finish([ref('1')]);
    await first;
    expect(await lister.list('1.2', 1000)).toEqual([ref('1')]);
    expect(f.calls).toHaveLength(1);
    lister.invalidate('1.2');
    const again = lister.list('1.2', 1000);
    f.finish([ref('1'), ref('2')]);
    expect(await again).toHaveLength(2);
    expect(f.calls).toHaveLength(2);
    lister.close();
  });

  it('does not cache a listing that raced with a store into the study', async () => {
    const f = fakePacs();
    const lister = new InstanceLister(f.pacs, 30);
    const racing = lister.list('1.2', 1000);
    lister.invalidate('1.2');
    f.finish([ref('1')]);
    await racing;
    const next = lister.list('1.2', 1000);
    expect(f.calls).toHaveLength(2);
    f.finish([ref('1'), ref('2')]);
    expect(await next).toHaveLength(2);
    lister.close();
  });
});
